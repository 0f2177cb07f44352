"""Download benchmark: dezoomify_nb against a naive ThreadPoolExecutor + httpx + Pillow script.

For each per-tile latency, a loopback tile server (``python -m dezoomify_nb.testing serve``) runs in its
own process; every contender runs in its own subprocess (so the peak RSS reported is that contender's
alone), downloads level 0 of the same image, and its output is checked against the server's image.

    .venv/bin/python bench/bench_download.py                       # defaults: about 3-4 minutes
    .venv/bin/python bench/bench_download.py --latencies 0 --repeat 1 --size 4096

See bench/README.md for how to read the table. The results also go to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "latest.json"

#: contender → (description, baseline it is compared with)
CONTENDERS: dict[str, tuple[str, str | None]] = {
    "ours-png": ("dz.open(url).save('out.png', level=0): streamed PNG (zlib 1, 'up' filter)", "naive-png"),
    "ours-jpg": ("dz.open(url).save('out.jpg', level=0): Pillow canvas, JPEG q95 4:4:4", "naive-jpg"),
    "ours-dask": ("dz.open(url).to_dask(0).compute(): into a numpy array, no file", "naive-mem"),
    "naive-png": ("ThreadPoolExecutor + httpx.Client + Pillow canvas, canvas.save('out.png') (Pillow defaults)",
                  None),
    "naive-png-z1": ("same, canvas.save('out.png', compress_level=1): same zlib level as ours", None),
    "naive-jpg": ("same, canvas.save('out.jpg', quality=95, subsampling=0): same settings as ours", None),
    "naive-mem": ("same, np.asarray(canvas): into a numpy array, no file", None),
}
DEFAULT_CONTENDERS = "ours-png,naive-png,naive-png-z1,ours-jpg,naive-jpg,ours-dask,naive-mem"
#: tile formats that are lossless (outputs must then equal the server's image exactly)
LOSSLESS_KINDS = ("dzi-png", "iiif2", "iiif3", "generic")
SUPPORTED_KINDS = ("dzi-jpg", "dzi-png", "zoomify", "iiif2", "iiif3")
#: lossy checks, in 0..255 units: mean |error| over the image, and over the worst 256×256 block
#: (JPEG q90 tiles of the test image: about 3.8 and 4.0; a tile shifted by one pixel: 5.3 or more)
JPEG_MAE_MAX = 4.5
JPEG_BLOCK_MAE_MAX = 4.8


# ------------------------------------------------------------------------------------------------------
# the naive baseline: what a typical script does
# ------------------------------------------------------------------------------------------------------
def naive_plan(client: Any, url: str) -> tuple[int, int, list[tuple[str, int, int, tuple[int, int, int, int]]]]:
    """Parse the metadata at ``url`` by hand → ``(W, H, [(tile_url, x, y, crop_box), ...])`` of level 0."""
    import xml.etree.ElementTree as ET

    r = client.get(url)
    r.raise_for_status()
    tiles = []
    if url.endswith(".dzi"):
        root = ET.fromstring(r.content)
        size = next(el for el in root if el.tag.endswith("Size"))
        W, H = int(size.get("Width")), int(size.get("Height"))
        ts, ov, fmt = int(root.get("TileSize")), int(root.get("Overlap", 0)), root.get("Format")
        top = math.ceil(math.log2(max(W, H)))
        base = url[: -len(".dzi")] + "_files"
        for row in range(math.ceil(H / ts)):
            for col in range(math.ceil(W / ts)):
                x, y = col * ts, row * ts
                ox, oy = (ov if col else 0), (ov if row else 0)
                box = (ox, oy, ox + min(ts, W - x), oy + min(ts, H - y))
                tiles.append((f"{base}/{top}/{col}_{row}.{fmt}", x, y, box))
    elif url.endswith("ImageProperties.xml"):
        root = ET.fromstring(r.content)
        W, H, ts = int(root.get("WIDTH")), int(root.get("HEIGHT")), int(root.get("TILESIZE"))
        sizes = []  # zoomify.js: halve while larger than one tile
        w, h = W, H
        while w > ts or h > ts:
            sizes.append((w, h))
            w, h = w // 2, h // 2
        sizes = sizes or [(W, H)]
        counts = [math.ceil(w / ts) * math.ceil(h / ts) for w, h in reversed(sizes)]  # smallest first
        z = len(sizes) - 1
        before = sum(counts[:z])
        cols = math.ceil(W / ts)
        base = url[: -len("ImageProperties.xml")]
        for row in range(math.ceil(H / ts)):
            for col in range(cols):
                group = (before + col + row * cols) // 256
                x, y = col * ts, row * ts
                box = (0, 0, min(ts, W - x), min(ts, H - y))
                tiles.append((f"{base}TileGroup{group}/{z}-{col}-{row}.jpg", x, y, box))
    elif url.endswith("info.json"):
        info = r.json()
        W, H = info["width"], info["height"]
        tw = info["tiles"][0]["width"]
        th = info["tiles"][0].get("height", tw)
        base = info.get("id") or info["@id"]
        v3 = "id" in info
        for row in range(math.ceil(H / th)):
            for col in range(math.ceil(W / tw)):
                x, y = col * tw, row * th
                w, h = min(tw, W - x), min(th, H - y)
                size = f"{w},{h}" if v3 else f"{w},"
                tiles.append((f"{base}/{x},{y},{w},{h}/{size}/0/default.jpg", x, y, (0, 0, w, h)))
    else:
        raise SystemExit(f"the naive baseline does not know the format of {url}")
    return W, H, tiles


def naive_canvas(url: str, parallelism: int) -> tuple[Any, int, str]:
    """Fetch every level-0 tile with a thread pool and paste it into one Pillow canvas."""
    import io
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import httpx
    from PIL import Image

    limits = httpx.Limits(max_connections=parallelism, max_keepalive_connections=parallelism)
    with httpx.Client(limits=limits, timeout=30) as client:
        W, H, tiles = naive_plan(client, url)
        canvas = Image.new("RGB", (W, H))

        def get(tile: tuple[str, int, int, tuple[int, int, int, int]]) -> tuple[Any, int, int]:
            tile_url, x, y, box = tile
            r = client.get(tile_url)
            r.raise_for_status()
            im = Image.open(io.BytesIO(r.content)).convert("RGB")
            return im.crop(box), x, y

        with ThreadPoolExecutor(parallelism) as pool:
            for fut in as_completed([pool.submit(get, t) for t in tiles]):
                im, x, y = fut.result()
                canvas.paste(im, (x, y))
    return canvas, len(tiles), tiles[0][0]


# ------------------------------------------------------------------------------------------------------
# child: one contender, one run
# ------------------------------------------------------------------------------------------------------
def _status_mib(field: str) -> float:
    """``VmHWM`` (peak RSS) or ``VmRSS`` of this process, in MiB.

    Not ``getrusage().ru_maxrss``: Linux carries it across fork + exec, so a child would report its
    parent's size. ``VmHWM`` belongs to the address space, which exec replaces.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: best effort


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_child(contender: str, url: str, out: str, parallelism: int) -> dict[str, Any]:
    """Run one contender; the timed section includes the metadata request and writing the output."""
    import numpy as np

    first_url = ""
    if contender.startswith("ours"):
        import dezoomify_nb as dz

        rss0, cpu0, t0 = _status_mib("VmRSS"), _cpu(), time.perf_counter()
        img = dz.open(url, parallelism=parallelism, min_interval=0, retries=1)
        lv = img.levels[0]
        tiles, first_url = lv.n_tiles, lv.tile_url(0, 0)
        if contender == "ours-dask":
            arr = img.to_dask(0).compute()
        else:
            img.save(out, level=0, progress=False)
        seconds = time.perf_counter() - t0
    else:
        rss0, cpu0, t0 = _status_mib("VmRSS"), _cpu(), time.perf_counter()
        canvas, tiles, first_url = naive_canvas(url, parallelism)
        if contender == "naive-mem":
            arr = np.asarray(canvas)
        elif contender == "naive-png":
            canvas.save(out)
        elif contender == "naive-png-z1":
            canvas.save(out, compress_level=1)
        elif contender == "naive-jpg":
            canvas.save(out, quality=95, subsampling=0)
        else:
            raise SystemExit(f"unknown contender {contender}")
        seconds = time.perf_counter() - t0
    result = {"seconds": seconds, "tiles": tiles, "peak_rss_mib": _status_mib("VmHWM"), "rss_before_mib": rss0,
              "cpu_seconds": _cpu() - cpu0, "first_tile_url": first_url}
    if contender in ("ours-dask", "naive-mem"):
        np.save(out, arr)  # untimed: the parent verifies it
    return result


# ------------------------------------------------------------------------------------------------------
# parent: server, warm-up, verification, table
# ------------------------------------------------------------------------------------------------------
class Server:
    """``python -m dezoomify_nb.testing serve`` in a subprocess; ``url`` is the kind's metadata URL."""

    def __init__(self, size: int, latency_ms: float, kind: str, workdir: Path) -> None:
        from dezoomify_nb.testing import TileServer

        ready = workdir / f"server-{latency_ms:g}.url"
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dezoomify_nb.testing", "serve", "--width", str(size), "--height", str(size),
             "--latency", str(latency_ms / 1000), "--ready-file", str(ready), "--print-url", kind],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the tile server did not start")
            time.sleep(0.05)
        self.base = ready.read_text().strip()
        self.url = self.base + TileServer.path(kind)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def warm_up(url: str, parallelism: int) -> float:
    """Fetch every level-0 tile once so the server's tile cache is hot for every contender."""
    t0 = time.perf_counter()
    naive_canvas(url, parallelism)
    return time.perf_counter() - t0


def read_output(path: Path) -> Any:
    import numpy as np
    from PIL import Image

    if path.suffix == ".npy":
        return np.load(path, mmap_mode="r")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def verify(path: Path, reference: Any, exact: bool) -> dict[str, Any]:
    """Compare an output with the server's level-0 image, in bands of 256 rows (bounded temporaries)."""
    import numpy as np

    arr = read_output(path)
    if arr.shape != reference.shape:
        return {"ok": False, "why": f"shape {arr.shape} != {reference.shape}", "sha256": "", "exact": exact}
    digest = hashlib.sha256()
    total = 0.0
    worst = 0.0
    equal = True
    band = 256
    for y in range(0, reference.shape[0], band):
        a, b = np.ascontiguousarray(arr[y : y + band]), reference[y : y + band]
        digest.update(a.tobytes())
        if exact:
            equal = equal and bool(np.array_equal(a, b))
            continue
        d = np.abs(a.astype(np.int16) - b.astype(np.int16))
        total += float(d.sum(dtype=np.int64))
        w = d.shape[1] // band * band
        if w:
            blocks = d[:, :w].reshape(d.shape[0], w // band, band, -1).mean(axis=(0, 2, 3))
            worst = max(worst, float(blocks.max()))
    result: dict[str, Any] = {"sha256": digest.hexdigest()[:16], "exact": exact}
    if exact:
        result.update(ok=equal, why="" if equal else "pixels differ from the server's image")
    else:
        mae = total / reference.size
        ok = mae <= JPEG_MAE_MAX and worst <= JPEG_BLOCK_MAE_MAX
        result.update(ok=ok, mae=round(mae, 3), worst_block_mae=round(worst, 3),
                      why="" if ok else f"mean error {mae:.2f} / worst block {worst:.2f} too large")
    return result


def run_contender(contender: str, url: str, parallelism: int, workdir: Path) -> tuple[dict[str, Any], Path]:
    suffix = {"png": ".png", "z1": ".png", "jpg": ".jpg"}.get(contender.rsplit("-", 1)[-1], ".npy")
    out = workdir / f"{contender}{suffix}"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", contender, url, str(out), str(parallelism)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{contender} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), out


def fmt_table(rows: list[dict[str, Any]]) -> str:
    head = ("contender", "latency", "tiles", "seconds", "tiles/s", "ours/naive", "vs", "peak RSS MiB", "CPU s",
            "out MiB", "check")
    lines = [head]
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        check = ("exact" if r["exact"] else f"mae {r['mae']:.2f}") if r["ok"] else "FAILED"
        if r["ok"] and r.get("same_as_baseline") is not None:
            check += ", = naive" if r["same_as_baseline"] else ", != naive"
        lines.append((r["contender"], f"{r['latency_ms']:g} ms", str(r["tiles"]), f"{r['seconds']:.2f}",
                      f"{r['tiles_per_s']:.0f}", ratio, r["baseline"] or "", f"{r['peak_rss_mib']:.0f}",
                      f"{r['cpu_seconds']:.1f}", "" if r["out_mib"] is None else f"{r['out_mib']:.0f}", check))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    right = {2, 3, 4, 5, 7, 8, 9}
    out = []
    for n, line in enumerate(lines):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latencies", default="0,20", help="per-tile server latencies in ms (default 0,20)")
    p.add_argument("--size", type=int, default=8192, help="image width and height in px (default 8192)")
    p.add_argument("--kind", default="dzi-jpg", choices=SUPPORTED_KINDS, help="tile format (default dzi-jpg)")
    p.add_argument("--parallelism", type=int, default=16, help="concurrent requests, both sides (default 16)")
    p.add_argument("--repeat", type=int, default=1, help="runs per contender; the median is reported")
    p.add_argument("--contenders", default=DEFAULT_CONTENDERS,
                   help=f"comma-separated subset of {','.join(CONTENDERS)}")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write results (default {DEFAULT_JSON})")
    p.add_argument("--workdir", type=Path, help="where outputs go (default: a temporary directory, removed)")
    p.add_argument("--serve", action="store_true", help="only start the server (first latency), print its URL, wait")
    args = p.parse_args(argv)

    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for c in contenders:
        if c not in CONTENDERS:
            p.error(f"unknown contender {c!r}")
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="dz-bench-")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)

    if args.serve:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the server too
        server = Server(args.size, latencies[0], args.kind, workdir)
        print(server.url, flush=True)
        try:
            server.proc.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
        return 0

    import numpy as np

    from dezoomify_nb.testing import make_test_image

    started = time.perf_counter()
    reference = make_test_image(args.size, args.size)
    exact = args.kind in LOSSLESS_KINDS
    print(f"{args.size}x{args.size} {args.kind}, parallelism {args.parallelism}, repeat {args.repeat}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)
    rows: list[dict[str, Any]] = []
    try:
        for latency in latencies:
            server = Server(args.size, latency, args.kind, workdir)
            try:
                warm = warm_up(server.url, args.parallelism)
                print(f"latency {latency:g} ms: server {server.url} (warm-up {warm:.1f} s)", flush=True)
                runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
                for rep in range(args.repeat):
                    order = contenders[rep % len(contenders):] + contenders[: rep % len(contenders)]
                    for c in order:
                        res, out = run_contender(c, server.url, args.parallelism, workdir)
                        res["out_mib"] = None if out.suffix == ".npy" else out.stat().st_size / 2**20
                        res.update(verify(out, reference, exact and not out.suffix == ".jpg"))
                        out.unlink(missing_ok=True)
                        runs[c].append(res)
                        status = "ok" if res["ok"] else f"WRONG OUTPUT: {res['why']}"
                        print(f"  {c:<13} run {rep + 1}: {res['seconds']:6.2f} s, "
                              f"peak RSS {res['peak_rss_mib']:5.0f} MiB, {status}", flush=True)
                rows.extend(summarize(runs, latency))
            finally:
                server.stop()
    finally:
        if tmp is not None:
            tmp.cleanup()
    del reference

    table = fmt_table(rows)
    print()
    print(table)
    extra = [r for r in rows if r["contender"] == "ours-png"]
    for r in extra:
        z1 = next((x for x in rows if x["contender"] == "naive-png-z1" and x["latency_ms"] == r["latency_ms"]), None)
        if z1:
            print(f"ours-png vs naive-png-z1 (same zlib level) at {r['latency_ms']:g} ms: "
                  f"{r['tiles_per_s'] / z1['tiles_per_s']:.2f}x")
    urls = {r["first_tile_url"].split("/", 3)[-1] for r in rows}
    if len(urls) > 1:
        print(f"NOTE: contenders requested different tile URLs: {sorted(urls)}")
    bad = [r for r in rows if not r["ok"]]
    print(f"total {time.perf_counter() - started:.0f} s; results in {args.json}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "config": {"size": args.size, "kind": args.kind, "parallelism": args.parallelism, "repeat": args.repeat,
                   "latencies_ms": latencies, "contenders": {c: CONTENDERS[c][0] for c in contenders}},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "numpy": np.__version__, "versions": _versions()},
        "rows": rows,
        "table": table,
    }
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    if bad:
        print("SOME OUTPUTS WERE WRONG: " + ", ".join(f"{r['contender']}@{r['latency_ms']:g}ms" for r in bad))
        return 1
    return 0


def summarize(runs: dict[str, list[dict[str, Any]]], latency: float) -> list[dict[str, Any]]:
    rows = []
    by_name: dict[str, dict[str, Any]] = {}
    for c, rs in runs.items():
        seconds = statistics.median(r["seconds"] for r in rs)
        tiles = rs[0]["tiles"]
        row = {
            "contender": c, "latency_ms": latency, "tiles": tiles, "seconds": round(seconds, 3),
            "seconds_all": [round(r["seconds"], 3) for r in rs], "tiles_per_s": tiles / seconds,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
            "rss_before_mib": max(r["rss_before_mib"] for r in rs),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in rs),
            "out_mib": rs[0]["out_mib"], "ok": all(r["ok"] for r in rs),
            "exact": rs[0]["exact"],
            "mae": max(r.get("mae", 0.0) for r in rs), "worst_block_mae": max(r.get("worst_block_mae", 0.0) for r in rs),
            "sha256": rs[0]["sha256"], "first_tile_url": rs[0]["first_tile_url"],
            "why": "; ".join(r["why"] for r in rs if r["why"]),
            "baseline": CONTENDERS[c][1], "ratio": None, "same_as_baseline": None,
            "description": CONTENDERS[c][0],
        }
        by_name[c] = row
        rows.append(row)
    for row in rows:
        base = by_name.get(row["baseline"] or "")
        if base is None:
            row["baseline"] = None
            continue
        row["ratio"] = row["tiles_per_s"] / base["tiles_per_s"]
        row["same_as_baseline"] = row["sha256"] == base["sha256"]
    return rows


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("dezoomify_nb", "httpx", "Pillow", "zarr", "dask"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:  # bench_download.py --child CONTENDER URL OUT PARALLELISM
        contender, url, out, parallelism = sys.argv[2:]
        print(json.dumps(run_child(contender, url, out, int(parallelism))), flush=True)
        sys.exit(0)
    sys.exit(main())
