// dezoomify_nb page strip (anywidget): a virtualised vertical list of page thumbnails with labels.
// Only the rows in view exist in the DOM, and only the thumbnails of rows in view are asked of the
// kernel ({type: "want", gen, indices}), once scrolling has paused; the kernel answers each with
// {type: "thumb", gen, index, mime} + the PNG bytes (or {error}). A click selects the page.

const ROW = 112; // px per row: a 96 × 72 thumbnail box and a two-line label

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

function render({ model, el: host }) {
  const root = el("div", "dz-strip-root");
  root.tabIndex = -1;
  root.setAttribute("role", "listbox");
  root.setAttribute("aria-label", "Pages");
  const spacer = el("div", "dz-strip-spacer");
  root.append(spacer);
  host.append(root);

  let gen = model.get("gen");
  let urls = new Map(); // index -> object URL of its thumbnail
  let failed = new Set();
  let asked = new Set(); // indices asked of the kernel (this gen)
  const rows = new Map(); // index -> row element in the DOM
  let timer = null;

  function labels() { return model.get("labels") || []; }

  function fill(row, i) {
    const box = row.querySelector(".dz-strip-thumb");
    const url = urls.get(i);
    if (url && !box.querySelector("img")) {
      box.textContent = "";
      const img = el("img");
      img.alt = "";
      img.src = url;
      box.append(img);
    } else if (!url && failed.has(i)) {
      box.textContent = "no preview";
      box.classList.add("dz-strip-failed");
    }
  }

  function makeRow(i) {
    const row = el("div", "dz-strip-row");
    row.style.top = `${i * ROW}px`;
    row.dataset.index = String(i);
    row.setAttribute("role", "option");
    row.title = labels()[i] || "";
    row.append(el("div", "dz-strip-thumb"), el("div", "dz-strip-label", labels()[i] || ""));
    row.addEventListener("click", () => {
      model.set("selected", i);
      model.save_changes();
    });
    fill(row, i);
    return row;
  }

  function visibleRange(margin) {
    const n = labels().length;
    const top = root.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - margin);
    const last = Math.min(n - 1, Math.floor((top + root.clientHeight - 1) / ROW) + margin);
    return [first, last];
  }

  function layout() {
    const n = labels().length;
    spacer.style.height = `${n * ROW}px`;
    const [first, last] = visibleRange(2); // a few rows beyond the edges exist (no thumbnails asked)
    for (const [i, row] of rows) {
      if (i < first || i > last) {
        row.remove();
        rows.delete(i);
      }
    }
    for (let i = first; i <= last; i++) {
      if (!rows.has(i)) {
        const row = makeRow(i);
        rows.set(i, row);
        root.append(row);
      }
      rows.get(i).classList.toggle("dz-strip-selected", i === model.get("selected"));
      rows.get(i).setAttribute("aria-selected", String(i === model.get("selected")));
    }
    clearTimeout(timer);
    timer = setTimeout(want, 120); // ask once scrolling pauses
  }

  function want() {
    if (!root.isConnected || root.clientHeight === 0) return;
    const [first, last] = visibleRange(0);
    const indices = [];
    for (let i = first; i <= last; i++) if (!asked.has(i) && !urls.has(i)) indices.push(i);
    if (!indices.length) return;
    for (const i of indices) asked.add(i);
    model.send({ type: "want", gen, indices, visible: [first, last] });
  }

  function reset() {
    for (const u of urls.values()) URL.revokeObjectURL(u);
    urls = new Map();
    failed = new Set();
    asked = new Set();
    gen = model.get("gen");
    for (const row of rows.values()) row.remove();
    rows.clear();
    root.scrollTop = 0;
    layout();
    showSelected();
  }

  function showSelected() {
    const i = model.get("selected");
    if (i < 0) return;
    const top = i * ROW;
    if (top < root.scrollTop || top + ROW > root.scrollTop + root.clientHeight) {
      root.scrollTop = Math.max(0, top - (root.clientHeight - ROW) / 2);
    }
    layout();
  }

  model.on("msg:custom", (msg, buffers) => {
    if (!msg || msg.type !== "thumb" || msg.gen !== gen) return; // a reply for another list: dropped
    if (msg.error || !buffers || !buffers.length) {
      failed.add(msg.index);
    } else {
      urls.set(msg.index, URL.createObjectURL(new Blob([buffers[0]], { type: msg.mime || "image/png" })));
    }
    const row = rows.get(msg.index);
    if (row) fill(row, msg.index);
  });
  model.on("change:gen", reset);
  model.on("change:labels", reset);
  model.on("change:selected", showSelected);
  root.addEventListener("scroll", layout, { passive: true });
  root.addEventListener("keydown", (ev) => {
    const n = labels().length;
    const i = model.get("selected");
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: 3, PageUp: -3 }[ev.key];
    if (step === undefined || !n) return;
    ev.preventDefault();
    model.set("selected", Math.max(0, Math.min(n - 1, i + step)));
    model.save_changes();
  });
  const resized = new ResizeObserver(() => layout());
  resized.observe(root);
  layout();
  showSelected();
  return () => {
    resized.disconnect();
    clearTimeout(timer);
    for (const u of urls.values()) URL.revokeObjectURL(u);
  };
}

export default { render };
