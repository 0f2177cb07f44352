// dezoomify_nb deep-zoom viewer (anywidget front end). OpenSeadragon (prepended to this module by
// viewer.py) draws the image; every tile comes from the Python kernel (a custom message answered with
// the decoded, cropped tile re-encoded), so headers, decryption and the tile cache all apply.
// The user can draw a rectangle ("Select region"): its full-resolution pixel box goes to `region`.

const OSD = OpenSeadragon;

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

function makeSource(model, levels, gen, pending, viewId) {
  // levels: [[w, h, tw, th], ...], 0 = full resolution; OpenSeadragon's level i is ours n-1-i.
  const n = levels.length;
  const [W, H, TW, TH] = levels[0];
  const ours = (i) => levels[n - 1 - i];
  const ts = new OSD.TileSource({
    width: W, height: H, tileSize: TW, tileOverlap: 0, minLevel: 0, maxLevel: n - 1,
  });
  ts.getLevelScale = (i) => (i < 0 || i >= n ? 0 : ours(i)[0] / W);
  ts.getNumTiles = (i) => {
    const lv = ours(Math.max(0, Math.min(n - 1, i)));
    return new OSD.Point(Math.ceil(lv[0] / lv[2]), Math.ceil(lv[1] / lv[3]));
  };
  ts.getTileWidth = (i) => ours(Math.max(0, Math.min(n - 1, i)))[2];
  ts.getTileHeight = (i) => ours(Math.max(0, Math.min(n - 1, i)))[3];
  ts.tileExists = (i, x, y) => {
    if (i < 0 || i >= n) return false;
    const lv = ours(i);
    return x >= 0 && y >= 0 && x < Math.ceil(lv[0] / lv[2]) && y < Math.ceil(lv[1] / lv[3]);
  };
  ts.getTileUrl = (i, x, y) => `dezoomify:${gen}/${n - 1 - i}/${x}/${y}`;
  ts.getTileHashKey = (i, x, y) => `dezoomify:${gen}/${n - 1 - i}/${x}/${y}`;
  let counter = 0;
  ts.downloadTileStart = (job) => {
    const [, rest] = job.src.split(":");
    const [g, k, col, row] = rest.split("/").map(Number);
    const id = `${viewId}:${++counter}`;
    pending.set(id, job);
    job.userData.dezoomifyId = id;
    model.send({ type: "tile", id, gen: g, level: k, col, row });
  };
  ts.downloadTileAbort = (job) => {
    pending.delete(job.userData.dezoomifyId);
  };
  return ts;
}

function render({ model, el }) {
  const viewId = Math.random().toString(36).slice(2, 10);
  const pending = new Map();
  const root = h("div", "dz-viewer-root");
  const bar = h("div", "dz-viewer-toolbar");
  const zin = h("button", "dz-zoom-in", "+");
  const zout = h("button", "dz-zoom-out", "\u2212");
  const home = h("button", "dz-home", "Fit");
  const select = h("button", "dz-select", "Select region");
  const readout = h("span", "dz-viewer-readout", "");
  zin.title = "Zoom in";
  zout.title = "Zoom out";
  home.title = "Show the whole image";
  select.title = "Draw a rectangle on the image: only that region is downloaded";
  bar.append(zin, zout, home, select, readout);
  const stage = h("div", "dz-viewer-stage");
  stage.style.height = model.get("height") || "420px";
  const canvas = h("div", "dz-viewer-osd");
  const draw = h("div", "dz-viewer-draw");
  const rubber = h("div", "dz-viewer-rubber");
  draw.append(rubber);
  stage.append(canvas, draw);
  root.append(bar, stage);
  el.append(root);

  const viewer = OSD({
    element: canvas,
    showNavigationControl: false,
    crossOriginPolicy: false,
    animationTime: 0.25,
    maxZoomPixelRatio: 4,
    visibilityRatio: 0.5,
    imageLoaderLimit: 12,
    timeout: 60000,
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
  });

  let regionBox = null;
  function showRegion() {
    if (regionBox) {
      viewer.removeOverlay(regionBox);
      regionBox = null;
    }
    const r = model.get("region") || [];
    const item = viewer.world.getItemAt(0);
    if (r.length === 4 && item) {
      regionBox = h("div", "dz-viewer-region");
      viewer.addOverlay({ element: regionBox, location: item.imageToViewportRectangle(r[0], r[1], r[2], r[3]) });
    }
    updateReadout();
  }

  function updateReadout() {
    const item = viewer.world.getItemAt(0);
    if (!item) {
      readout.textContent = "";
      return;
    }
    const zoom = item.viewportToImageZoom(viewer.viewport.getZoom(true));
    const r = model.get("region") || [];
    const reg = r.length === 4 ? ` \u00b7 region ${r[2]} \u00d7 ${r[3]} at (${r[0]}, ${r[1]})` : "";
    readout.textContent = ` zoom ${(zoom * 100).toFixed(zoom < 0.1 ? 1 : 0)} %${reg}`;
  }

  function reportView() {
    const item = viewer.world.getItemAt(0);
    if (!item) return;
    const b = item.viewportToImageRectangle(viewer.viewport.getBounds(true));
    model.set("view", [b.x, b.y, b.width, b.height].map(Math.round));
    model.set("zoom", item.viewportToImageZoom(viewer.viewport.getZoom(true)));
    model.save_changes();
    updateReadout();
  }

  function openImage() {
    for (const job of pending.values()) job.fail("image changed", null);
    pending.clear();
    const levels = model.get("levels") || [];
    if (!levels.length) {
      viewer.close();
      return;
    }
    viewer.open(makeSource(model, levels, model.get("gen"), pending, viewId));
  }

  // Until the user moves the view, keep the whole image fitted (the element may be sized after render).
  let touched = false;
  for (const ev of ["canvas-drag", "canvas-scroll", "canvas-double-click"]) viewer.addHandler(ev, () => { touched = true; });
  const resized = new ResizeObserver(() => {
    if (!touched && viewer.world.getItemAt(0)) viewer.viewport.goHome(true);
  });
  resized.observe(stage);
  viewer.addHandler("open", () => {
    touched = false;
    viewer.viewport.goHome(true);
    showRegion();
    reportView();
  });
  viewer.addHandler("animation-finish", reportView);
  viewer.addHandler("animation", updateReadout);

  model.on("msg:custom", (msg, buffers) => {
    if (!msg || msg.type !== "tile") return;
    const job = pending.get(msg.id);
    if (!job) return;
    pending.delete(msg.id);
    if (msg.error || !buffers || !buffers.length) {
      job.fail(msg.error || "no tile", null);
      return;
    }
    job.finish(new Blob([buffers[0]], { type: msg.mime }), null, "rasterBlob");
  });
  model.on("change:levels", openImage);
  model.on("change:gen", openImage);
  model.on("change:region", showRegion);

  zin.addEventListener("click", () => { touched = true; viewer.viewport.zoomBy(2); });
  zout.addEventListener("click", () => { touched = true; viewer.viewport.zoomBy(0.5); });
  home.addEventListener("click", () => viewer.viewport.goHome());

  // Region drawing: while "Select region" is on, a transparent layer over the image takes the pointer.
  let selecting = false;
  let start = null;
  function setSelecting(on) {
    selecting = on;
    draw.style.display = on ? "block" : "none";
    select.classList.toggle("dz-active", on);
    rubber.style.display = "none";
  }
  setSelecting(false);
  select.addEventListener("click", () => setSelecting(!selecting));
  const local = (ev) => {
    const r = draw.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  };
  draw.addEventListener("pointerdown", (ev) => {
    start = local(ev);
    draw.setPointerCapture(ev.pointerId);
    Object.assign(rubber.style, { display: "block", left: `${start[0]}px`, top: `${start[1]}px`, width: "0px", height: "0px" });
    ev.preventDefault();
  });
  draw.addEventListener("pointermove", (ev) => {
    if (!start) return;
    const [x, y] = local(ev);
    Object.assign(rubber.style, {
      left: `${Math.min(x, start[0])}px`, top: `${Math.min(y, start[1])}px`,
      width: `${Math.abs(x - start[0])}px`, height: `${Math.abs(y - start[1])}px`,
    });
  });
  draw.addEventListener("pointerup", (ev) => {
    if (!start) return;
    const end = local(ev);
    const item = viewer.world.getItemAt(0);
    const levels = model.get("levels") || [];
    const s = start;
    start = null;
    setSelecting(false);
    if (!item || !levels.length) return;
    const [W, H] = levels[0];
    const a = item.viewerElementToImageCoordinates(new OSD.Point(Math.min(s[0], end[0]), Math.min(s[1], end[1])));
    const b = item.viewerElementToImageCoordinates(new OSD.Point(Math.max(s[0], end[0]), Math.max(s[1], end[1])));
    const x0 = Math.max(0, Math.min(W, Math.floor(a.x)));
    const y0 = Math.max(0, Math.min(H, Math.floor(a.y)));
    const x1 = Math.max(0, Math.min(W, Math.ceil(b.x)));
    const y1 = Math.max(0, Math.min(H, Math.ceil(b.y)));
    if (x1 - x0 >= 1 && y1 - y0 >= 1) {
      model.set("region", [x0, y0, x1 - x0, y1 - y0]);
      model.save_changes();
    }
  });

  openImage();
  return () => {
    resized.disconnect();
    pending.clear();
    viewer.destroy();
  };
}

export default { render };
