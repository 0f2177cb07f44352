"""Writer benchmark: peak RSS, wall time and CPU use of each writer for a 400-megapixel download.

A loopback tile server (``python -m dezoomify_nb.testing serve``) runs in its own process and serves a
20000×20000 image (default: Deep Zoom, 256 px JPEG tiles without overlap, so the IIIF writer copies
tiles byte for byte). Each writer runs in its own subprocess, which downloads level 0 with
``dz.open(url).save(out)`` (the pyramid writers also the levels below) and reports its own peak RSS
(``ru_maxrss``), wall time and CPU time; the server's CPU time over the same run is read from ``/proc``.
The two ``cpu/wall`` columns add up to the cores kept busy (2 on this machine): the writer's own
threads overlap fetching/decoding with encoding, and the loopback server uses the rest.

    .venv/bin/python bench/bench_writers.py                     # all writers, 20000×20000 (~5-10 min)
    .venv/bin/python bench/bench_writers.py --size 8000 --formats tif iiif

Not a test: nothing here asserts timings. Results: a table on stdout and bench/results/writers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "writers.json"
FORMATS = {"png": "out.png", "tif": "out.tif", "iiif": "out.iiif", "ome-zarr": "out.ome.zarr", "jpg": "out.jpg"}
LIMIT_MB = 400


def child(url: str, out: str) -> None:
    """Run in the subprocess: one download, then a JSON line with the figures."""
    import dezoomify_nb as dz

    t0 = time.perf_counter()
    c0 = time.process_time()
    img = dz.open(url, min_interval=0.0)  # loopback: no politeness delay between requests
    result = img.save(out, level=0, progress=False)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = sum(f.stat().st_size for f in Path(out).rglob("*")) if Path(out).is_dir() else Path(out).stat().st_size
    print(json.dumps({"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(peak_kib / 1024, 1),
                      "output_mb": round(size / 2**20, 1), "width": result.width, "height": result.height,
                      "failed": len(result.failed)}))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(size: int, workdir: Path) -> tuple[subprocess.Popen, str]:
    ready = workdir / "server.url"
    log = open(workdir / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dezoomify_nb.testing", "serve", "--width", str(size), "--height", str(size),
         "--tile-size", "256", "--ready-file", str(ready)],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while not (ready.exists() and ready.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"tile server did not start; see {workdir / 'server.log'}")
        time.sleep(0.2)
    return proc, ready.read_text().strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=20000, help="image side in px (default 20000: 400 MP)")
    p.add_argument("--kind", default="dzi-jpg", help="tile server kind (default dzi-jpg)")
    p.add_argument("--formats", nargs="+", default=["png", "tif", "iiif", "ome-zarr"], choices=list(FORMATS))
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    p.add_argument("--child", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-writers-"))
    rows = []
    proc = None
    try:
        t = time.perf_counter()
        proc, base = start_server(args.size, work)
        url = base.rstrip("/") + "/" + args.kind + {"dzi-jpg": "/image.dzi", "zoomify": "/ImageProperties.xml"}.get(
            args.kind, "/info.json")
        print(f"server ready in {time.perf_counter() - t:.0f}s: {url}", file=sys.stderr)
        # the test server encodes each tile on its first request: one untimed pass over every level first,
        # so no writer pays for the server's encoding (the first pyramid writer used to)
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", url, str(work / "warm-up.iiif")], check=True,
                       capture_output=True)
        shutil.rmtree(work / "warm-up.iiif", ignore_errors=True)
        print(f"server warmed up (every tile served once) in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        for fmt in args.formats:
            out = work / FORMATS[fmt]
            server_cpu = cpu_seconds(proc.pid)
            r = subprocess.run([sys.executable, __file__, "--child", url, str(out)], capture_output=True, text=True)
            server_cpu = cpu_seconds(proc.pid) - server_cpu
            if r.returncode != 0:
                print(r.stderr, file=sys.stderr)
                rows.append({"format": fmt, "error": r.stderr.strip().splitlines()[-1:]})
                continue
            row = {"format": fmt, **json.loads(r.stdout.strip().splitlines()[-1])}
            row["server_cpu_s"] = round(server_cpu, 2)
            rows.append(row)
            print(f"{fmt:9} peak RSS {row['peak_rss_mb']:7.1f} MB  wall {row['wall_s']:7.1f} s  "
                  f"cpu/wall {row['cpu_s'] / row['wall_s']:.2f} (+ server {server_cpu / row['wall_s']:.2f})  output {row['output_mb']:8.1f} MB", file=sys.stderr)
            if out.is_dir():
                shutil.rmtree(out)
            else:
                out.unlink()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.size}×{args.size} px ({args.size**2 / 1e6:.0f} MP) from the loopback server ({args.kind}), "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    print("| writer | peak RSS (MB) | wall (s) | cpu/wall: writer | cpu/wall: server | output (MB) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['format']} | error: {row['error']} | | | | |")
            continue
        flag = "" if row["peak_rss_mb"] < LIMIT_MB else " (over 400)"
        print(f"| {row['format']} | {row['peak_rss_mb']:.0f}{flag} | {row['wall_s']:.1f} | "
              f"{row['cpu_s'] / row['wall_s']:.2f} | {row['server_cpu_s'] / row['wall_s']:.2f} | {row['output_mb']:.0f} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"size": args.size, "kind": args.kind, "cores": os.cpu_count(),
                                     "python": platform.python_version(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
