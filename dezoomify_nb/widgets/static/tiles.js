// dezoomify_nb deep-zoom viewer: the tile source and the tile loader (concatenated before viewer.js).

const OSD = OpenSeadragon;

// Tile requests go to the kernel as {type: "tile", id, gen, level, col, row}. An id is never reused
// (view id + a counter that never restarts), the reply echoes what was asked, and a reply is drawn only
// if it matches a request still pending for the image shown now: a late tile of another image (or of an
// earlier request) is dropped. A failed tile is asked again a few times with back-off, then drawn as a
// "failed" marker (never left black); retryFailed() asks for the failed ones again.
const RETRY_DELAYS = [400, 1200, 3600]; // ms before the 2nd, 3rd and 4th attempt
const REQUEST_TIMEOUT = 45000; // a request unanswered this long counts as failed (the kernel may be busy)
const CACHE_TILES = 400; // tiles of the shown image kept in the browser (a retry redraws from them)

function makeSource(levels, gen, loader) {
  // levels: [[w, h, tw, th], ...], 0 = full resolution; OpenSeadragon's level i is ours n-1-i.
  const n = levels.length;
  const [W, H, TW] = levels[0];
  const ours = (i) => levels[n - 1 - Math.max(0, Math.min(n - 1, i))];
  const ts = new OSD.TileSource({
    width: W, height: H, tileSize: TW, tileOverlap: 0, minLevel: 0, maxLevel: n - 1,
  });
  ts.getLevelScale = (i) => (i < 0 || i >= n ? 0 : ours(i)[0] / W);
  ts.getNumTiles = (i) => {
    const lv = ours(i);
    return new OSD.Point(Math.ceil(lv[0] / lv[2]), Math.ceil(lv[1] / lv[3]));
  };
  ts.getTileWidth = (i) => ours(i)[2];
  ts.getTileHeight = (i) => ours(i)[3];
  ts.tileExists = (i, x, y) => {
    if (i < 0 || i >= n) return false;
    const lv = ours(i);
    return x >= 0 && y >= 0 && x < Math.ceil(lv[0] / lv[2]) && y < Math.ceil(lv[1] / lv[3]);
  };
  ts.getTileUrl = (i, x, y) => `dezoomify:${gen}/${n - 1 - i}/${x}/${y}`;
  ts.getTileHashKey = (i, x, y) => `dezoomify:${gen}/${n - 1 - i}/${x}/${y}`;
  ts.downloadTileStart = (job) => loader.start(job);
  ts.downloadTileAbort = (job) => loader.abort(job);
  return ts;
}

// A "failed tile" marker: hatched, with a warning sign, so a failure is never mistaken for black.
function failedTileBlob() {
  const c = document.createElement("canvas");
  c.width = c.height = 256;
  const g = c.getContext("2d");
  g.fillStyle = "#4a4a4a";
  g.fillRect(0, 0, 256, 256);
  g.strokeStyle = "#6e6e6e";
  g.lineWidth = 10;
  for (let d = -256; d < 512; d += 32) {
    g.beginPath();
    g.moveTo(d, 0);
    g.lineTo(d + 256, 256);
    g.stroke();
  }
  g.fillStyle = "#e8a33a";
  g.beginPath();
  g.moveTo(128, 76);
  g.lineTo(184, 172);
  g.lineTo(72, 172);
  g.closePath();
  g.fill();
  g.fillStyle = "#2b2b2b";
  g.fillRect(123, 102, 10, 40);
  g.fillRect(123, 150, 10, 10);
  return new Promise((resolve) => c.toBlob(resolve, "image/png"));
}

// A transparent pixel: what a request of an image no longer shown gets, so that OpenSeadragon's job
// queue moves on without an error (its own error path logs, and leaves the tile black for good).
const NOTHING = new Blob([Uint8Array.from(atob(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="),
(c) => c.charCodeAt(0))], { type: "image/png" });

function drop(job) {
  setTimeout(() => {
    try {
      job.finish(NOTHING, null, "rasterBlob");
    } catch (e) { /* the image is already closed */ }
  }, 0);
}

function makeLoader(model, viewId, onChange) {
  let seq = 0; // never restarts: ids are unique for the life of the view
  let gen = null; // the generation shown; requests of any other are refused
  const pending = new Map(); // id -> entry {job, key, gen, level, col, row, tries, timer}
  const cache = new Map(); // key -> Blob (insertion order = LRU)
  const failed = new Set(); // keys drawn as failed
  let marker = null;
  const stats = { requested: 0, served: 0, dropped: 0, retried: 0, firstTile: null };

  function send(entry) {
    const id = `${viewId}:${++seq}`;
    entry.id = id;
    pending.set(id, entry);
    entry.timer = setTimeout(() => reply({ id, gen: entry.gen, level: entry.level, col: entry.col, row: entry.row,
      error: "no answer from the kernel" }, []), REQUEST_TIMEOUT);
    stats.requested += 1;
    model.send({ type: "tile", id, gen: entry.gen, level: entry.level, col: entry.col, row: entry.row });
  }

  function forget(entry) {
    clearTimeout(entry.timer);
    clearTimeout(entry.retry);
    if (entry.id) pending.delete(entry.id);
    entry.dead = true;
  }

  function finishFailed(entry) {
    failed.add(entry.key);
    (marker || (marker = failedTileBlob())).then((blob) => {
      if (!entry.dead) {
        entry.dead = true;
        entry.job.finish(blob, null, "rasterBlob");
      }
      onChange();
    });
  }

  function reply(msg, buffers) {
    const entry = pending.get(msg.id);
    // unknown id (late, or another view's), or not the tile this id asked for: never drawn
    if (!entry || entry.gen !== msg.gen || entry.level !== msg.level || entry.col !== msg.col
        || entry.row !== msg.row) {
      stats.dropped += 1;
      return;
    }
    pending.delete(msg.id);
    clearTimeout(entry.timer);
    entry.id = null;
    if (entry.gen !== gen || msg.stale) {
      forget(entry);
      drop(entry.job);
      return;
    }
    if (msg.error || !buffers || !buffers.length) {
      entry.tries += 1;
      entry.lastError = msg.error || "no tile";
      if (entry.tries <= RETRY_DELAYS.length) {
        stats.retried += 1;
        entry.retry = setTimeout(() => { if (!entry.dead && entry.gen === gen) send(entry); },
          RETRY_DELAYS[entry.tries - 1]);
      } else {
        finishFailed(entry);
      }
      return;
    }
    const blob = new Blob([buffers[0]], { type: msg.mime });
    cache.set(entry.key, blob);
    while (cache.size > CACHE_TILES) cache.delete(cache.keys().next().value);
    stats.served += 1;
    if (stats.firstTile === null) stats.firstTile = performance.now();
    entry.dead = true;
    entry.job.finish(blob, null, "rasterBlob");
  }

  return {
    stats,
    get failedCount() { return failed.size; },
    get pendingCount() { return pending.size; },
    setGen(g) {
      for (const entry of [...pending.values()]) {
        forget(entry);
        drop(entry.job);
      }
      pending.clear();
      cache.clear();
      failed.clear();
      gen = g;
      stats.firstTile = null;
    },
    start(job) {
      const [g, level, col, row] = job.src.slice("dezoomify:".length).split("/").map(Number);
      if (g !== gen) { // a queued job of an image no longer shown
        drop(job);
        return;
      }
      const entry = { job, key: job.src, gen: g, level, col, row, tries: 0, dead: false };
      job.userData.dezoomify = entry;
      const kept = cache.get(entry.key);
      if (kept && !failed.has(entry.key)) {
        cache.delete(entry.key); // most recently used last
        cache.set(entry.key, kept);
        entry.dead = true;
        Promise.resolve().then(() => job.finish(kept, null, "rasterBlob"));
        return;
      }
      failed.delete(entry.key);
      send(entry);
    },
    abort(job) {
      const entry = job.userData && job.userData.dezoomify;
      if (entry) forget(entry);
    },
    reply,
    // forget the failed tiles, so that the next redraw asks for them again (the others come from cache)
    retryFailed() {
      const had = failed.size;
      failed.clear();
      onChange();
      return had;
    },
  };
}
