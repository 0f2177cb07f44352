// dezoomify_nb deep-zoom viewer (anywidget front end). OpenSeadragon (prepended to this module by
// viewer.py) draws the image; every tile comes from the Python kernel (a custom message answered with
// the decoded, cropped tile re-encoded), so headers, decryption and the tile cache all apply.
// Controls are overlaid on the view (zoom, fit, region, fullscreen; keys + − 0 r f Esc), with a navigator;
// the region is drawn with the mouse, then moved and resized with handles: its full-resolution pixel box
// [x, y, w, h] is the synced trait `region` (set from Python too).

const ICONS = {
  in: '<path d="M12 5v14M5 12h14"/>',
  out: '<path d="M5 12h14"/>',
  fit: '<path d="M4 11l8-7 8 7M6 9.5V20h12V9.5"/>',
  full: '<path d="M4 4h6M4 4v6M20 4h-6M20 4v6M4 20h6M4 20v-6M20 20h-6M20 20v-6"/>',
  unfull: '<path d="M10 4v6H4M14 4v6h6M10 20v-6H4M14 20v-6h6"/>',
  region: '<path d="M4 8V4h4M16 4h4v4M20 16v4h-4M8 20H4v-4" /><rect x="8" y="8" width="8" height="8" rx="1"/>',
  lock: '<rect x="5" y="11" width="14" height="9" rx="2"/><path d="M8 11V8a4 4 0 0 1 8 0v3"/>',
  unlock: '<rect x="5" y="11" width="14" height="9" rx="2"/><path d="M8 11V8a4 4 0 0 1 7.5-2"/>',
  clear: '<path d="M6 6l12 12M18 6L6 18"/>',
  retry: '<path d="M20 11a8 8 0 1 0-2.3 5.7M20 5v6h-6"/>',
};

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

function button(cls, icon, title, key) {
  const b = h("button", `dz-btn ${cls}`);
  b.type = "button";
  b.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true">${ICONS[icon]}</svg>`;
  b.title = key ? `${title} (${key})` : title;
  b.setAttribute("aria-label", title);
  return b;
}

let views = 0;

function render({ model, el }) {
  const viewId = `${Math.random().toString(36).slice(2, 10)}${++views}`;
  const root = h("div", "dz-viewer-root");
  root.tabIndex = 0;
  // JupyterLab (Lumino) leaves the keys pressed in here to us: no notebook command on "r", "f", "0"...
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.setAttribute("data-p-suppress-shortcuts", "true");
  root.setAttribute("role", "application");
  root.setAttribute("aria-label", "Deep-zoom image viewer: + and − zoom, 0 fits, f fullscreen, r draws a region");
  const stage = h("div", "dz-viewer-stage");
  stage.style.height = model.get("height") || "420px";
  const canvas = h("div", "dz-viewer-osd");
  const empty = h("div", "dz-viewer-empty");
  const loading = h("div", "dz-ov dz-loading");
  // controls overlaid on the view
  const controls = h("div", "dz-ov dz-controls");
  const zin = button("dz-zoom-in", "in", "Zoom in", "+");
  const zout = button("dz-zoom-out", "out", "Zoom out", "−");
  const fit = button("dz-home", "fit", "Fit the whole image", "0");
  const full = button("dz-full", "full", "Fullscreen", "f");
  const select = button("dz-select", "region", "Draw a region to download", "r");
  controls.append(zin, zout, fit, h("span", "dz-sep"), select, full);
  const readout = h("div", "dz-ov dz-viewer-readout");
  const failedChip = h("div", "dz-ov dz-failed");
  const failedText = h("span", "dz-failed-text");
  const retryBtn = h("button", "dz-retry", "Retry");
  retryBtn.type = "button";
  failedChip.append(failedText, retryBtn);
  const navEl = h("div", "dz-ov dz-navigator dz-nav-idle");
  const hint = h("div", "dz-ov dz-hint", "Drag to draw the region · Esc cancels");
  // region: the drawing layer, the box with its handles and its own small toolbar
  const draw = h("div", "dz-viewer-draw");
  const rubber = h("div", "dz-viewer-rubber");
  draw.append(rubber);
  const regionBox = h("div", "dz-viewer-region");
  // the handles have a layer of their own, above every overlay (the controls, the navigator): a handle
  // seen is a handle that can be grabbed, wherever the region is
  const handleLayer = h("div", "dz-viewer-handles");
  const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];
  for (const name of HANDLES) {
    const hd = h("div", `dz-handle dz-handle-${name}`);
    hd.dataset.handle = name;
    handleLayer.append(hd);
  }
  const regionBar = h("div", "dz-viewer-region-bar");
  const regionSize = h("span", "dz-viewer-region-size");
  const lock = button("dz-viewer-lock", "unlock", "Lock the aspect ratio");
  const clear = button("dz-viewer-clear", "clear", "Remove the region");
  regionBar.append(regionSize, lock, clear);
  stage.append(canvas, empty, regionBox, draw, loading, controls, readout, failedChip, hint, navEl, regionBar,
    handleLayer);
  root.append(stage);
  el.append(root);

  const viewer = OSD({
    element: canvas,
    showNavigationControl: false,
    crossOriginPolicy: false,
    animationTime: 0.3,
    maxZoomPixelRatio: 4,
    viewportMargins: { left: 8, top: 8, right: 8, bottom: 8 },
    visibilityRatio: 0.5,
    imageLoaderLimit: 8,
    timeout: 600000, // our loader times requests out itself, and retries
    tileRetryMax: 0,
    autoResize: false,
    showNavigator: true,
    navigatorElement: navEl,
    navigatorAutoFade: false,
    navigatorBackground: "transparent",
    navigatorBorderColor: "transparent",
    navigatorDisplayRegionColor: "#2f80ed",
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
  });
  root.dzViewer = viewer; // for tests and the curious: the OpenSeadragon viewer
  const nav = viewer.navigator;
  // the navigator has the image's shape (at most 168 × 120 px), and shows only when the view does not
  // already hold the whole image
  function sizeNavigator() {
    const lv = levels();
    if (!lv.length || !nav) return;
    const [W, H] = lv[0];
    const [w, hh] = W / H > 168 / 120 ? [168, Math.round(168 * H / W)] : [Math.round(120 * W / H), 120];
    Object.assign(navEl.style, { width: `${w}px`, height: `${hh}px` });
    if (nav.updateSize) nav.updateSize();
    nav.viewport.resize(new OSD.Point(w, hh), false);
    nav.viewport.goHome(true);
    placeOverlays();
  }
  function updateNavigator() {
    const it = item();
    let whole = true;
    if (it) {
      const b = it.viewportToImageRectangle(viewer.viewport.getBounds(true));
      const [W, H] = levels()[0] || [0, 0];
      whole = b.x <= 1 && b.y <= 1 && b.x + b.width >= W - 1 && b.y + b.height >= H - 1;
    }
    navEl.classList.toggle("dz-nav-idle", whole || !model.get("navigator"));
  }

  // Where the overlays sit. The controls at the top left, the navigator at the bottom right, the zoom
  // readout at the bottom left: each stays off the region's handles (and the failed-tiles chip, and the
  // overlays placed before it) by taking its first free spot: the controls the top right; the navigator
  // the top right, the bottom left (above the readout), the top left; the readout beside the navigator,
  // the bottom centre. The navigator and the readout also prefer, among free spots, the one that hides
  // least of the region. With no free spot (a small view), the one with the fewest handles under it:
  // the handles' layer is above the overlays, so a handle is still seen and grabbed (the readout, a mere
  // label, hides instead). While a mouse button is down in the view (a handle dragged, the view panned)
  // an overlay keeps its spot as long as it is free (no jumping to and fro), and tidies up on release.
  // Decided from the geometry alone, never from the pointer's position: nothing flickers under the
  // mouse. While a region is drawn the navigator is faint and lets the pointer through (CSS: .dz-drawing).
  const spotOf = { controls: "tl", navigator: "br", readout: "bl" };
  let pressed = false;
  const shown = (e) => e.offsetParent !== null;
  function boxOf(e) { // e's box in the view's coordinates
    const v = canvas.getBoundingClientRect();
    const r = e.getBoundingClientRect();
    return { l: r.left - v.left, t: r.top - v.top, r: r.right - v.left, b: r.bottom - v.top };
  }
  const meets = (p, q, gap) => p.l < q.r + gap && q.l < p.r + gap && p.t < q.b + gap && q.t < p.b + gap;
  const handleBoxes = () => (shown(handleLayer) ? [...handleLayer.children].filter(shown).map(boxOf) : []);
  const navShown = () => !navEl.classList.contains("dz-nav-idle");
  function placeOverlays() {
    const W = canvas.clientWidth;
    const H = canvas.clientHeight;
    if (!W || !H || !shown(canvas)) return;
    const avoid = handleBoxes();
    const region = shown(regionBox) ? boxOf(regionBox) : null;
    if (shown(failedChip)) avoid.push(boxOf(failedChip));
    // e at the best of its spots ({name: [x, y]}, in order of preference); its box and whether it is free
    function put(e, key, at, spare) { // spare: of the region too
      const w = e.offsetWidth;
      const hh = e.offsetHeight;
      const box = (n) => ({ l: at[n][0], t: at[n][1], r: at[n][0] + w, b: at[n][1] + hh });
      // 100 when out of the view, 1 per handle under it, and the part of it over the region (< 1)
      const cost = (n) => {
        const r = box(n);
        const out = r.l < 4 || r.t < 4 || r.r > W - 4 || r.b > H - 4;
        const over = spare && region ? Math.max(0, Math.min(r.r, region.r) - Math.max(r.l, region.l))
          * Math.max(0, Math.min(r.b, region.b) - Math.max(r.t, region.t)) / (w * hh + 1) : 0;
        return (out ? 100 : 0) + avoid.filter((q) => meets(q, r, 6)).length + over;
      };
      const keep = pressed && at[spotOf[key]] && cost(spotOf[key]) < 1; // still free: no jump mid-drag
      let best = keep ? spotOf[key] : Object.keys(at)[0];
      if (!keep) for (const n of Object.keys(at)) if (cost(n) < cost(best)) best = n;
      spotOf[key] = best;
      Object.assign(e.style, { left: `${at[best][0]}px`, top: `${at[best][1]}px`, right: "auto", bottom: "auto" });
      const r = box(best);
      r.free = cost(best) < 1;
      return r;
    }
    const cw = controls.offsetWidth;
    const ctl = put(controls, "controls", { tl: [10, 10], tr: [W - cw - 10, 10] });
    avoid.push(ctl);
    const onLeft = spotOf.controls === "tl";
    const rh = readout.offsetHeight || 22;
    const w = navEl.offsetWidth;
    const hh = navEl.offsetHeight;
    if (w && hh) {
      const nav = put(navEl, "navigator", {
        br: [W - w - 10, H - hh - 10], tr: [onLeft ? W - w - 10 : ctl.l - 8 - w, 10],
        bl: [10, H - 10 - rh - 6 - hh], tl: [onLeft ? ctl.r + 8 : 10, 10],
      }, true);
      root.dataset.navigator = spotOf.navigator;
      if (navShown()) avoid.push(nav);
    }
    if (shown(readout)) {
      const rw = readout.offsetWidth;
      const right = spotOf.navigator === "br" && navShown() ? W - w - 18 : W - 10;
      const spot = put(readout, "readout", { bl: [10, H - rh - 10], br: [right - rw, H - rh - 10],
        bc: [Math.round((W - rw) / 2), H - rh - 10] }, true);
      readout.classList.toggle("dz-away", !spot.free);
    }
  }

  const loader = makeLoader(model, viewId, () => updateStatus());
  root.dzLoader = loader;
  const item = () => viewer.world.getItemAt(0);
  const levels = () => model.get("levels") || [];

  // --- status: loading line, failed tiles, zoom readout, empty state --------------------------------
  let statusTimer = null;
  function updateStatus() {
    const failed = loader.failedCount;
    failedChip.style.display = failed ? "flex" : "none";
    failedText.textContent = `${failed} tile${failed === 1 ? "" : "s"} failed`;
    root.dataset.failed = String(failed);
    loading.classList.toggle("dz-on", loader.pendingCount > 0);
    if (model.get("failed_tiles") !== failed) {
      clearTimeout(statusTimer);
      statusTimer = setTimeout(() => { model.set("failed_tiles", loader.failedCount); model.save_changes(); }, 200);
    }
  }
  const ticker = setInterval(() => {
    loading.classList.toggle("dz-on", loader.pendingCount > 0);
    followSize(); // in case a size change was not observed
    if (!pressed) placeOverlays(); // after the view was hidden (a JupyterLab panel switched) or restyled
  }, 250);
  viewer.addHandler("tile-loaded", () => {
    updateStatus();
    // when the first tile of this image is on screen (the frame after it loaded), for the timing tests
    if (!root.dataset.firstTile && loader.stats.firstTile !== null) {
      const gen = root.dataset.gen;
      requestAnimationFrame(() => {
        if (root.dataset.gen === gen && !root.dataset.firstTile) root.dataset.firstTile = String(performance.now());
      });
    }
  });

  function zoomNow() {
    const it = item();
    return it ? it.viewportToImageZoom(viewer.viewport.getZoom(true)) : 0;
  }
  function updateReadout() {
    const z = zoomNow();
    readout.textContent = item() ? `zoom ${(z * 100).toFixed(z < 0.1 ? 1 : 0)} %` : "";
    readout.style.display = item() ? "block" : "none";
  }
  function reportView() {
    const it = item();
    if (!it) return;
    userBounds = fitted ? null : viewer.viewport.getBounds(true);
    const b = it.viewportToImageRectangle(viewer.viewport.getBounds(true));
    model.set("view", [b.x, b.y, b.width, b.height].map(Math.round));
    model.set("zoom", zoomNow());
    model.save_changes();
    updateReadout();
  }

  // --- fitting: every image opens wholly visible and centred; it stays fitted while the frame
  // changes size, until the user zooms or pans ----------------------------------------------------------
  let fitted = true;
  function fitNow(immediately) {
    fitted = true;
    viewer.viewport.goHome(immediately);
  }
  function touch() { fitted = false; }
  for (const ev of ["canvas-drag", "canvas-scroll", "canvas-pinch", "canvas-double-click", "canvas-key"]) {
    viewer.addHandler(ev, touch);
  }
  // The frame's size is followed here, not by OpenSeadragon (autoResize: false): it rescales the zoom
  // on a resize (a fitted image ended up fitted to the width), and a frame hidden for a while (0 × 0:
  // a JupyterLab panel switched, a theme changed) left it at 1 × 1 px for good. A hidden frame keeps
  // its size; a fitted image is fitted again; otherwise the view the user chose is kept.
  let userBounds = null; // the view the user chose, in viewport coordinates
  const bigEnough = (p) => p.x > 8 && p.y > 8;
  function followSize() {
    const size = new OSD.Point(canvas.clientWidth, canvas.clientHeight);
    if (!bigEnough(size) || size.equals(viewer.viewport.getContainerSize())) return;
    const keep = userBounds || viewer.viewport.getBounds(true);
    viewer.viewport.resize(size, true);
    if (item()) {
      if (fitted) viewer.viewport.goHome(true);
      else viewer.viewport.fitBounds(keep, true);
    }
    viewer.forceRedraw();
    placeRegion();
  }
  const sizes = new ResizeObserver(followSize);
  sizes.observe(canvas);
  viewer.addHandler("open", () => {
    followSize();
    sizeNavigator();
    fitNow(true);
    requestAnimationFrame(() => { if (fitted && item()) viewer.viewport.goHome(true); });
    showRegion();
    reportView();
    updateStatus();
  });
  viewer.addHandler("animation-finish", reportView);
  viewer.addHandler("animation", () => { updateReadout(); updateNavigator(); placeRegion(); });
  viewer.addHandler("update-viewport", placeRegion);

  function openImage() {
    const lv = levels();
    loader.setGen(model.get("gen"));
    delete root.dataset.firstTile;
    root.dataset.gen = String(model.get("gen"));
    fitted = true;
    setDrawing(false);
    if (!lv.length) {
      viewer.close();
      empty.style.display = "flex";
      empty.textContent = model.get("placeholder") || "";
      updateReadout();
      showRegion();
      updateStatus();
      return;
    }
    empty.style.display = "none";
    viewer.open(makeSource(lv, model.get("gen"), loader));
  }

  // --- messages from the kernel ------------------------------------------------------------------------
  model.on("msg:custom", (msg, buffers) => {
    if (!msg) return;
    if (msg.type === "tile") {
      loader.reply(msg, buffers);
      updateStatus();
    } else if (msg.type === "command") {
      if (msg.name === "fit") fitNow(false);
      else if (msg.name === "zoom") zoomBy(Number(msg.factor) || 1);
      else if (msg.name === "retry") retryFailed();
    }
  });
  model.on("change:gen", openImage);
  model.on("change:region", showRegion);
  model.on("change:region_aspect", () => { lock.innerHTML = lockIcon(); lock.classList.toggle("dz-active", aspect() > 0); });
  model.on("change:drawing", () => setDrawing(!!model.get("drawing"), true));
  model.on("change:placeholder", () => { if (!levels().length) empty.textContent = model.get("placeholder") || ""; });
  model.on("change:navigator", () => { updateNavigator(); placeRegion(); });
  model.on("change:height", () => { stage.style.height = model.get("height") || "420px"; });

  function zoomBy(factor) {
    if (!item()) return;
    touch();
    viewer.viewport.zoomBy(factor);
    viewer.viewport.applyConstraints();
  }
  function retryFailed() {
    const it = item();
    if (loader.retryFailed() && it) {
      it.reset(); // redraw: the good tiles come from the browser's cache, the failed ones are asked again
      viewer.forceRedraw();
    }
    updateStatus();
  }

  // --- fullscreen -------------------------------------------------------------------------------------
  function toggleFullscreen() {
    if (document.fullscreenElement === root) document.exitFullscreen();
    else if (root.requestFullscreen) root.requestFullscreen().catch(() => {});
  }
  const onFullscreen = () => {
    const on = document.fullscreenElement === root;
    root.classList.toggle("dz-fullscreen", on);
    full.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true">${ICONS[on ? "unfull" : "full"]}</svg>`;
    full.title = on ? "Leave fullscreen (f, Esc)" : "Fullscreen (f)";
  };
  document.addEventListener("fullscreenchange", onFullscreen);

  zin.addEventListener("click", () => zoomBy(2));
  zout.addEventListener("click", () => zoomBy(0.5));
  fit.addEventListener("click", () => fitNow(false));
  full.addEventListener("click", toggleFullscreen);
  select.addEventListener("click", () => setDrawing(!drawing));
  retryBtn.addEventListener("click", retryFailed);
  clear.addEventListener("click", () => { model.set("region", []); model.save_changes(); });
  lock.addEventListener("click", () => {
    const r = model.get("region") || [];
    model.set("region_aspect", aspect() > 0 ? 0 : (r.length === 4 ? r[2] / r[3] : 1));
    model.save_changes();
  });
  // keys: a capturing listener on the window, so that OpenSeadragon's own ("r" rotates, "f" flips) never
  // see ours, nor the notebook's shortcuts (Notebook 7 turned the cell to raw on "r" despite the attributes)
  const onKey = (ev) => {
    if (!root.contains(ev.target)) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return;
    let done = true;
    switch (ev.key) {
      case "+": case "=": zoomBy(1.5); break;
      case "-": case "_": case "\u2212": zoomBy(1 / 1.5); break;
      case "0": fitNow(false); break;
      case "f": case "F": toggleFullscreen(); break;
      case "r": case "R": setDrawing(!drawing); break;
      case "Escape":
        if (drawing) setDrawing(false);
        else if (document.fullscreenElement === root) document.exitFullscreen();
        else done = false;
        break;
      default: done = false;
    }
    if (done) {
      ev.preventDefault();
      ev.stopPropagation();
    }
  };
  window.addEventListener("keydown", onKey, true);
  // while a button is down in the view the overlays keep their spots (placeOverlays); they tidy up after
  const onPress = () => { pressed = true; };
  const onRelease = () => { if (pressed) { pressed = false; placeRegion(); } };
  stage.addEventListener("pointerdown", onPress, true);
  window.addEventListener("pointerup", onRelease, true);
  window.addEventListener("pointercancel", onRelease, true);
  // a click in the view gives it the keyboard
  stage.addEventListener("pointerdown", () => { if (!root.contains(document.activeElement)) root.focus({ preventScroll: true }); });

  // --- region -----------------------------------------------------------------------------------------
  const aspect = () => Number(model.get("region_aspect")) || 0;
  const lockIcon = () => `<svg viewBox="0 0 24 24" aria-hidden="true">${ICONS[aspect() > 0 ? "lock" : "unlock"]}</svg>`;
  lock.innerHTML = lockIcon();
  let drawing = false;
  function setDrawing(on, fromModel) {
    on = on && !!item();
    drawing = on;
    root.classList.toggle("dz-drawing", on);
    select.classList.toggle("dz-active", on);
    select.setAttribute("aria-pressed", String(on));
    rubber.style.display = "none";
    if (!fromModel && model.get("drawing") !== on) {
      model.set("drawing", on);
      model.save_changes();
    }
  }
  const local = (ev) => { // in the view's coordinates (those of OpenSeadragon's element)
    const r = canvas.getBoundingClientRect();
    return new OSD.Point(ev.clientX - r.left, ev.clientY - r.top);
  };
  const toImage = (p) => item().viewerElementToImageCoordinates(p);
  const toScreen = (x, y) => item().imageToViewerElementCoordinates(new OSD.Point(x, y));
  function clampRegion(x0, y0, x1, y1) {
    const [W, H] = levels()[0];
    const a = [Math.max(0, Math.min(W, Math.round(Math.min(x0, x1)))), Math.max(0, Math.min(H, Math.round(Math.min(y0, y1))))];
    const b = [Math.max(0, Math.min(W, Math.round(Math.max(x0, x1)))), Math.max(0, Math.min(H, Math.round(Math.max(y0, y1))))];
    return [a[0], a[1], b[0] - a[0], b[1] - a[1]];
  }
  // with the aspect locked, the corner moved follows the pointer's larger change
  function lockAspect(fx, fy, x, y) {
    const k = aspect();
    if (!(k > 0)) return [x, y];
    let w = Math.abs(x - fx);
    let hh = Math.abs(y - fy);
    if (w / k > hh) hh = w / k; else w = hh * k;
    return [fx + Math.sign(x - fx || 1) * w, fy + Math.sign(y - fy || 1) * hh];
  }
  let local_region = null; // the region while it is being dragged (sent to the kernel at most every 100 ms)
  let sendTimer = null;
  function setRegion(r, final) {
    local_region = final ? null : r;
    placeRegion();
    clearTimeout(sendTimer);
    const send = () => {
      if (r[2] >= 1 && r[3] >= 1) { model.set("region", r); model.save_changes(); }
    };
    if (final) send(); else sendTimer = setTimeout(send, 100);
  }
  function currentRegion() {
    if (local_region) return local_region;
    const r = model.get("region") || [];
    return r.length === 4 ? r : null;
  }
  let navBox = null;
  function showRegion() {
    local_region = null;
    placeRegion();
    const r = currentRegion();
    if (navBox && nav) { nav.removeOverlay(navBox); navBox = null; }
    if (r && item() && nav) {
      navBox = h("div", "dz-nav-region");
      nav.addOverlay({ element: navBox, location: item().imageToViewportRectangle(r[0], r[1], r[2], r[3]) });
    }
  }
  function placeRegion() {
    const r = currentRegion();
    if (!r || !item()) {
      regionBox.style.display = "none";
      handleLayer.style.display = "none";
      regionBar.style.display = "none";
      root.dataset.region = "";
      placeOverlays();
      return;
    }
    const a = toScreen(r[0], r[1]);
    const b = toScreen(r[0] + r[2], r[1] + r[3]);
    const place = (e, inset) => Object.assign(e.style, {
      display: "block", left: `${a.x + inset}px`, top: `${a.y + inset}px`,
      width: `${Math.max(0, b.x - a.x - 2 * inset)}px`, height: `${Math.max(0, b.y - a.y - 2 * inset)}px`,
    });
    place(regionBox, 0);
    place(handleLayer, 1); // the handles centred on the box's 2 px border
    handleLayer.classList.toggle("dz-locked", aspect() > 0);
    handleLayer.classList.toggle("dz-small", b.x - a.x < 90 || b.y - a.y < 60);
    regionSize.textContent = `${r[2]} \u00d7 ${r[3]} px`;
    placeOverlays();
    placeBar(a, b);
    root.dataset.region = r.join(",");
  }

  // the region's bar (size, lock, remove) sits under the box's right end; above it when there is no
  // room below or the navigator or a handle is there; else inside the box, clear of the handles; hidden
  // with the box
  function placeBar(a, b) {
    const W = canvas.clientWidth;
    const H = canvas.clientHeight;
    if (b.x < 0 || b.y < 0 || a.x > W || a.y > H) {
      regionBar.style.display = "none";
      return;
    }
    regionBar.style.display = "flex";
    const bw = regionBar.offsetWidth;
    const bh = regionBar.offsetHeight;
    const avoid = [...handleBoxes(), boxOf(controls)];
    if (navShown()) avoid.push(boxOf(navEl));
    if (shown(readout)) avoid.push(boxOf(readout));
    const x = (right) => Math.max(4, Math.min(W - bw - 4, right - bw));
    const spots = [
      [x(b.x), b.y + 10], [x(b.x), a.y - bh - 10], // below, above
      [x(Math.min(W, b.x) - 14), Math.min(H, b.y) - bh - 14], [x(Math.min(W, b.x) - 14), Math.max(0, a.y) + 14],
    ];
    const fits = ([l, t]) => t >= 4 && t + bh <= H - 4
      && !avoid.some((q) => meets(q, { l, t, r: l + bw, b: t + bh }, 2));
    const [left, top] = spots.find(fits) || spots[2];
    Object.assign(regionBar.style, { left: `${left}px`, top: `${Math.max(4, top)}px` });
  }

  // drawing a new region
  let start = null;
  draw.addEventListener("pointerdown", (ev) => {
    if (!item() || ev.button !== 0) return;
    start = local(ev);
    draw.setPointerCapture(ev.pointerId);
    Object.assign(rubber.style, { display: "block", left: `${start.x}px`, top: `${start.y}px`, width: "0px", height: "0px" });
    ev.preventDefault();
  });
  draw.addEventListener("pointermove", (ev) => {
    if (!start) return;
    const p = local(ev);
    const s = toImage(start);
    const [ix, iy] = lockAspect(s.x, s.y, toImage(p).x, toImage(p).y);
    const q = toScreen(ix, iy);
    Object.assign(rubber.style, {
      left: `${Math.min(q.x, start.x)}px`, top: `${Math.min(q.y, start.y)}px`,
      width: `${Math.abs(q.x - start.x)}px`, height: `${Math.abs(q.y - start.y)}px`,
    });
  });
  draw.addEventListener("pointerup", (ev) => {
    if (!start) return;
    const s = toImage(start);
    const e = toImage(local(ev));
    start = null;
    setDrawing(false);
    const [ex, ey] = lockAspect(s.x, s.y, e.x, e.y);
    const r = clampRegion(s.x, s.y, ex, ey);
    if (r[2] >= 1 && r[3] >= 1) setRegion(r, true);
  });

  // moving it (the box) and resizing it with the handles (their layer)
  let drag = null;
  const grab = (ev) => {
    if (ev.button !== 0) return;
    const r = currentRegion();
    if (!r || !item()) return;
    drag = { handle: ev.target.dataset.handle || "move", from: toImage(local(ev)), r: r.slice() };
    ev.currentTarget.setPointerCapture(ev.pointerId);
    ev.preventDefault();
    ev.stopPropagation();
  };
  const onDrag = (ev) => {
    if (!drag) return;
    const p = toImage(local(ev));
    const dx = p.x - drag.from.x;
    const dy = p.y - drag.from.y;
    let [x0, y0, w, hh] = drag.r;
    let x1 = x0 + w;
    let y1 = y0 + hh;
    const [W, H] = levels()[0];
    const hd = drag.handle;
    if (hd === "move") {
      const mx = Math.max(-x0, Math.min(W - x1, dx));
      const my = Math.max(-y0, Math.min(H - y1, dy));
      setRegion([Math.round(x0 + mx), Math.round(y0 + my), w, hh], false);
      return;
    }
    if (hd.includes("w")) x0 += dx;
    if (hd.includes("e")) x1 += dx;
    if (hd.includes("n")) y0 += dy;
    if (hd.includes("s")) y1 += dy;
    if (aspect() > 0) { // keep the opposite corner still
      const fx = hd.includes("w") ? drag.r[0] + drag.r[2] : drag.r[0];
      const fy = hd.includes("n") ? drag.r[1] + drag.r[3] : drag.r[1];
      const [mx, my] = lockAspect(fx, fy, hd.includes("w") ? x0 : x1, hd.includes("n") ? y0 : y1);
      [x0, x1] = [Math.min(fx, mx), Math.max(fx, mx)];
      [y0, y1] = [Math.min(fy, my), Math.max(fy, my)];
    }
    setRegion(clampRegion(x0, y0, x1, y1), false);
  };
  const endDrag = () => {
    if (!drag) return;
    drag = null;
    const r = currentRegion();
    if (r) setRegion(r, true);
  };
  // the wheel over the region still zooms the view
  const onWheel = (ev) => {
    if (!item()) return;
    ev.preventDefault();
    touch();
    viewer.viewport.zoomBy(ev.deltaY < 0 ? 1.2 : 1 / 1.2, viewer.viewport.pointFromPixel(local(ev)));
    viewer.viewport.applyConstraints();
  };
  for (const e of [regionBox, handleLayer]) {
    e.addEventListener("pointerdown", grab);
    e.addEventListener("pointermove", onDrag);
    e.addEventListener("pointerup", endDrag);
    e.addEventListener("pointercancel", endDrag);
    e.addEventListener("wheel", onWheel, { passive: false });
  }

  openImage();
  updateStatus();
  return () => {
    clearInterval(ticker);
    sizes.disconnect();
    document.removeEventListener("fullscreenchange", onFullscreen);
    window.removeEventListener("keydown", onKey, true);
    window.removeEventListener("pointerup", onRelease, true);
    window.removeEventListener("pointercancel", onRelease, true);
    loader.setGen(null);
    viewer.destroy();
  };
}

export default { render };
