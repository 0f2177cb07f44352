// dezoomify_nb status card (anywidget): shows the card's HTML (model "value") and, after a download,
// saves the file offered by the kernel (model "offered", a token) to this computer: the page asks
// {type: "file-begin", token}, the kernel answers {size, chunks, name, mime} (or {error}); the page then
// pulls {type: "file-chunk", token, index} a few at a time, each answered with the bytes as a buffer,
// and hands the assembled Blob to the browser as a download. In Voila (<body data-voila>), where the
// card's relative link to the file cannot work, the file name starts this download instead.

const WINDOW = 4; // chunks asked ahead
const LABEL = "Save to this computer";

function inVoila() {
  return !!(document.body && document.body.hasAttribute("data-voila"));
}

function render({ model, el }) {
  let transfer = null; // the running one: {token, parts, size, chunks, next, got, name, mime}

  function buttons() {
    return Array.from(el.querySelectorAll("[data-dz-save]"));
  }

  // How the transfer goes: in the button's label ("Sending 42 %…", "✓ In your downloads" for a while), an
  // error beside it (it stays until the next try).
  let restore = null;
  function say(text, isError) {
    const note = el.querySelector(".dz-save-state");
    if (note) note.textContent = isError ? text : "";
    clearTimeout(restore);
    for (const label of el.querySelectorAll(".dz-save-label")) {
      label.textContent = isError || !text ? LABEL : text;
    }
    for (const b of buttons()) b.classList.toggle("dz-save-done", text.startsWith("✓"));
    if (text && !isError && !transfer) restore = setTimeout(() => say("", false), 6000);
    fit();
  }

  // The button's label only where the card's facts still fit on one line beside it; else its icon alone
  // (dz-save-compact), so the done card stays two lines high in a narrow notebook.
  let width = -1;
  function fit() {
    const facts = el.querySelector(".dz-done-facts");
    el.classList.remove("dz-save-compact");
    if (!facts || !el.querySelector("[data-dz-save]")) return;
    const line = parseFloat(getComputedStyle(facts).lineHeight) || 20;
    if (facts.getBoundingClientRect().height > 1.5 * line) el.classList.add("dz-save-compact");
  }
  const resized = new ResizeObserver((entries) => {
    const w = Math.round(entries[entries.length - 1].contentRect.width);
    if (w === width) return; // a change of height (the class's own doing): nothing to refit
    width = w;
    requestAnimationFrame(fit); // not inside the observer's callback: no resize loop
  });
  resized.observe(el);

  function busy(on) {
    for (const b of buttons()) b.disabled = on;
    el.classList.toggle("dz-saving", on);
  }

  function finish(error) {
    const t = transfer;
    transfer = null;
    busy(false);
    if (error) {
      say(error, true);
      return;
    }
    const blob = new Blob(t.parts, { type: t.mime });
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = t.name;
    a.style.display = "none";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000); // the download has read it by then
    say("✓ In your downloads", false);
  }

  function ask() {
    const t = transfer;
    while (t && t.next < t.chunks && t.next - t.got < WINDOW) {
      model.send({ type: "file-chunk", token: t.token, index: t.next });
      t.next += 1;
    }
  }

  function start() {
    const token = model.get("offered");
    if (!token || transfer) return;
    transfer = { token, parts: [], size: 0, chunks: 0, next: 0, got: 0, name: model.get("offered_name"),
                 mime: "application/octet-stream" };
    busy(true);
    say("Preparing…", false);
    model.send({ type: "file-begin", token });
  }

  function onMessage(msg, buffers) {
    const t = transfer;
    if (!msg || !t || msg.token !== t.token) return;
    if (msg.error) {
      finish(msg.error);
      return;
    }
    if (msg.type === "file-begin") {
      Object.assign(t, { size: msg.size, chunks: msg.chunks, name: msg.name || t.name, mime: msg.mime || t.mime });
      ask();
    } else if (msg.type === "file-chunk") {
      const buf = buffers && buffers[0];
      if (!buf) {
        finish("The file came without its bytes: try again.");
        return;
      }
      t.parts[msg.index] = buf.buffer ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : buf;
      t.got += 1;
      if (t.got === t.chunks) {
        finish(null);
      } else {
        say(`Sending ${Math.floor((100 * t.got) / t.chunks)} %…`, false);
        ask();
      }
    }
  }

  function draw() {
    el.innerHTML = model.get("value") || "";
    transfer = null;
    el.classList.remove("dz-saving");
    requestAnimationFrame(fit); // once the card is laid out
    for (const b of buttons()) b.addEventListener("click", start);
    if (inVoila()) {
      // Voila serves no file of the kernel's folder: the name saves the file (when offered), else is plain text
      for (const a of el.querySelectorAll("a.dz-file-link")) {
        a.removeAttribute("href");
        a.removeAttribute("target");
        if (model.get("offered")) {
          a.setAttribute("role", "button");
          a.tabIndex = 0;
          a.title = `Save ${model.get("offered_name")} to this computer`;
          a.addEventListener("click", (e) => { e.preventDefault(); start(); });
          a.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); start(); } });
        } else {
          a.classList.add("dz-file-name");
        }
      }
    }
  }

  model.on("change:value", draw);
  model.on("change:offered", draw);
  model.on("msg:custom", onMessage);
  draw();
  return () => {
    resized.disconnect();
    model.off("change:value", draw);
    model.off("change:offered", draw);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
