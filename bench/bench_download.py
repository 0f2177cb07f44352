"""Download benchmark: dezoomify_nb against GDAL and a naive script, same tiles, same machine, one run.

A 16384×16384 Deep Zoom image (4096 JPEG tiles of 256 px at full resolution) is encoded once by the test
server and served from memory by a loopback static server (``static_server.py``, its own process, with
``--latency`` per tile). Every contender runs in its own subprocess, downloads the full resolution and
writes a file; every output is checked against the source image; peak RSS is the contender's own.
GDAL (Debian's ``gdal-bin``, installed with apt-get when missing) reads the same tiles through a TMS
description (GDAL has no Deep Zoom or Zoomify driver).

    .venv/bin/python bench/bench_download.py              # the full table (~6-8 minutes on 2 cores)
    .venv/bin/python bench/bench_download.py --quick      # ours + GDAL TIFF only
    .venv/bin/python bench/bench_download.py --size 8192 --plan "0:16:ours-png,gdal-png"

See bench/README.md for how to read the table. Results also go to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import contenders as C  # noqa: E402
from verify import verify  # noqa: E402

DEFAULT_JSON = HERE / "results" / "latest.json"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dezoomify_nb-bench"
#: latency ms : parallelism : contenders
DEFAULT_PLAN = ("0:16:ours-png,ours-png-httpx,ours-tif,ours-tif-z0,ours-iiif,ours-zarr,ours-open-offline,naive-png,naive-png-z1,"
                "naive-tif,gdal-png,gdal-png-z1,gdal-tif;20:16:ours-png,ours-tif-z0,ours-iiif,gdal-tif;"
                "20:64:ours-png,ours-tif-z0,gdal-tif")
QUICK_PLAN = "0:16:ours-png,ours-tif-z0,gdal-tif;20:16:ours-tif-z0;20:64:ours-png"


def ensure_gdal() -> str | None:
    """``gdal_translate``'s path, installing Debian's gdal-bin when missing (root); None if impossible."""
    path = shutil.which("gdal_translate")
    if path or not shutil.which("apt-get"):
        return path
    print("gdal_translate not found: apt-get install gdal-bin …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "gdal-bin"]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            print("  could not install gdal-bin: the gdal-* rows are skipped", flush=True)
            return None
    return shutil.which("gdal_translate")


class StaticServer:
    def __init__(self, root: Path, latency_ms: float, workdir: Path) -> None:
        ready = workdir / f"server-{latency_ms:g}.url"
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, str(HERE / "static_server.py"), "--root", str(root),
                                      "--latency", str(latency_ms / 1000), "--ready-file", str(ready)])
        deadline = time.monotonic() + 120
        while not (ready.exists() and ready.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the static server did not start")
            time.sleep(0.05)
        self.base = ready.read_text().strip()
        self.url = f"{self.base}/{C.KIND}/image.dzi"

    def stats(self, reset: bool = False) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.base + ("/_stats/reset" if reset else "/_stats")) as r:
            return json.loads(r.read())

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_one(contender: str, server: StaticServer, parallelism: int, size: int, workdir: Path) -> dict[str, Any]:
    out = workdir / f"{contender}{C.CONTENDERS[contender][1]}"
    target = server.url
    if contender.startswith("gdal"):
        target = str(C.gdal_xml(server.base, size, parallelism, workdir / f"tms-{parallelism}-{size}.xml"))
    server.stats(reset=True)
    cpu0 = server.cpu()
    proc = subprocess.run([sys.executable, str(HERE / "contenders.py"), contender, target, str(out), str(parallelism)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{contender} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["server"] = server.stats()
    res["server_cpu_s"] = round(server.cpu() - cpu0, 2)
    res["out_mib"] = (sum(f.stat().st_size for f in out.rglob("*")) if out.is_dir() else out.stat().st_size) / 2**20
    res.update(verify(out, size))
    shutil.rmtree(out) if out.is_dir() else out.unlink(missing_ok=True)
    return res


def parse_plan(text: str) -> list[tuple[float, int, list[str]]]:
    plan = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        latency, parallelism, names = part.split(":", 2)
        chosen = [n.strip() for n in names.split(",") if n.strip()]
        for n in chosen:
            if n not in C.CONTENDERS:
                raise SystemExit(f"unknown contender {n!r}; known: {', '.join(C.CONTENDERS)}")
        plan.append((float(latency), int(parallelism), chosen))
    return plan


def bounds(rates: dict[str, Any], size: int, cores: int) -> dict[str, float]:
    mp = size * size / 1e6
    decode = mp / rates["decode"]
    return {"decode_s_1core": decode, "png_encode_s_1core": mp / rates["ours_png"],
            "png_bound_s": (decode + mp / rates["ours_png"]) / cores, "tif_bound_s": decode / cores,
            "pillow_png_z6_s": mp / rates["pillow_png_z6"], "pillow_png_z1_s": mp / rates["pillow_png_z1"]}


def fmt_rows(rows: list[dict[str, Any]], floor: dict[tuple[float, int], float]) -> str:
    head = ("contender", "latency", "-n", "seconds", "tiles/s", "vs gdal", "vs naive", "peak RSS MiB", "CPU s",
            "server CPU s", "in flight max/mean", "out MiB", "check")
    lines = [head]
    for r in rows:
        check = ("exact" if r["exact"] else f"mae {r['mae']:.2f}") if r["ok"] else "FAILED: " + r["why"]
        fl = floor.get((r["latency_ms"], r["parallelism"]))
        lines.append((r["contender"], f"{r['latency_ms']:g} ms", str(r["parallelism"]), f"{r['seconds']:.2f}",
                      f"{r['tiles'] / r['seconds']:.0f}", r.get("vs_gdal", ""), r.get("vs_naive", ""),
                      f"{r['peak_rss_mib']:.0f}", f"{r['cpu_seconds']:.1f}", f"{r['server_cpu_s']:.1f}",
                      in_flight(r),
                      f"{r['out_mib']:.0f}", check + ("" if fl is None else "")))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def in_flight(r: dict[str, Any]) -> str:
    """Requests in flight as the server saw them; at 0 ms it answers each request as soon as it reads it,
    so it cannot see the client's concurrency (not shown)."""
    if r["latency_ms"] <= 0 or not r["tiles"]:
        return "–"
    return f"{r['server']['max_in_flight']}/{r['server']['mean_in_flight']:.1f}"


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Speed-ups against GDAL and the naive script writing the same format, at the same latency and -n."""
    for r in rows:
        if not r["contender"].startswith("ours"):
            continue
        fmt = r["contender"].split("-")[1]
        for other, key in (("gdal", "vs_gdal"), ("naive", "vs_naive")):
            for suffix in (fmt, fmt + "-z1"):
                base = next((x for x in rows if x["contender"] == f"{other}-{suffix}"
                             and x["latency_ms"] == r["latency_ms"] and x["parallelism"] == r["parallelism"]), None)
                if base is not None:
                    ratio = f"{base['seconds'] / r['seconds']:.1f}x"
                    r[key] = ratio if key not in r else f"{r[key]}, {ratio} (z1)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=16384, help="image width and height in px (default 16384)")
    p.add_argument("--plan", default=None, help=f"'LATENCY_MS:PARALLELISM:contender,…;…' (default {DEFAULT_PLAN!r})")
    p.add_argument("--quick", action="store_true", help=f"the short plan {QUICK_PLAN!r}")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    p.add_argument("--workdir", type=Path, help="where outputs go (default: a temporary directory)")
    p.add_argument("--serve", type=float, metavar="LATENCY_MS", help="only serve the tiles (for profiling)")
    args = p.parse_args(argv)
    plan = parse_plan(args.plan or (QUICK_PLAN if args.quick else DEFAULT_PLAN))
    cores = os.cpu_count() or 1
    tmp = tempfile.TemporaryDirectory(prefix="dz-bench-") if args.workdir is None else None
    workdir = Path(tmp.name) if tmp else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    root = C.tile_tree(args.size, CACHE)
    if args.serve is not None:
        server = StaticServer(root, args.serve, workdir)
        print(server.url, flush=True)
        try:
            server.proc.wait()
        except KeyboardInterrupt:
            server.stop()
        return 0
    gdal = ensure_gdal()
    if gdal is None:
        plan = [(lat, par, [c for c in names if not c.startswith("gdal")]) for lat, par, names in plan]
    gdal_version = subprocess.run(["gdal_translate", "--version"], capture_output=True, text=True).stdout.strip() if gdal else ""
    rates = C.measure_rates(root, args.size)
    bound = bounds(rates, args.size, cores)
    print(f"{args.size}x{args.size} {C.KIND}, {(args.size // C.TILE) ** 2} tiles, {cores} CPUs, "
          f"Python {platform.python_version()}, {gdal_version or 'no GDAL'} (tiles ready in {time.perf_counter() - started:.0f} s)",
          flush=True)
    rows: list[dict[str, Any]] = []
    floors: dict[tuple[float, int], float] = {}
    try:
        for latency, parallelism, names in plan:
            server = StaticServer(root, latency, workdir)
            try:
                floors[(latency, parallelism)] = (args.size // C.TILE) ** 2 * latency / 1000 / parallelism
                for c in names:
                    res = run_one(c, server, parallelism, args.size, workdir)
                    res.update(contender=c, latency_ms=latency, parallelism=parallelism)
                    rows.append(res)
                    print(f"  {c:<17} {latency:g} ms -n {parallelism:<3} {res['seconds']:6.2f} s  peak RSS "
                          f"{res['peak_rss_mib']:5.0f} MiB  in flight {in_flight(res)}  "
                          f"{'ok' if res['ok'] else 'WRONG: ' + res['why']}", flush=True)
            finally:
                server.stop()
    finally:
        if tmp is not None:
            tmp.cleanup()
    add_ratios(rows)
    table = fmt_rows(rows, floors)
    summary = summarize(rows, rates, bound, floors, args.size)
    print()
    print(table)
    print()
    print(summary)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; results in {args.json}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "size": args.size, "plan": [list(x) for x in plan], "cores": cores, "python": platform.python_version(),
        "platform": platform.platform(), "gdal": gdal_version, "rates_mp_s": rates, "bounds_s": bound,
        "network_floor_s": {f"{k[0]:g}ms/-n{k[1]}": v for k, v in floors.items()}, "rows": rows,
        "table": table, "summary": summary}, indent=1, default=str) + "\n")
    return 1 if any(not r["ok"] for r in rows) else 0


def summarize(rows: list[dict[str, Any]], rates: dict[str, Any], bound: dict[str, float],
              floors: dict[tuple[float, int], float], size: int) -> str:
    mp = size * size / 1e6
    lines = [
        f"rates, one core: JPEG decode {rates['decode']:.0f} MP/s ({rates['decoder']}; Pillow "
        f"{rates['pillow_decode']:.0f}); our PNG encoder {rates['ours_png']:.0f} MP/s "
        f"({rates['ours_png_backend']}, {rates['ours_png_ratio']:.3f} of raw) and {rates['ours_png_z6']:.0f} MP/s at "
        f"level 6 ({rates['ours_png_z6_backend']}); Pillow PNG {rates['pillow_png_z6']:.1f} MP/s at level 6 "
        f"({rates['pillow_png_z6_ratio']:.3f} of raw), {rates['pillow_png_z1']:.1f} MP/s at level 1",
        f"CPU bound for {mp:.0f} MP on {os.cpu_count()} cores: PNG {bound['png_bound_s']:.2f} s "
        f"(decode {bound['decode_s_1core']:.2f} + encode {bound['png_encode_s_1core']:.2f} core-s), "
        f"TIFF {bound['tif_bound_s']:.2f} s (decode only; HTTP and the server's CPU not counted)",
    ]
    for (latency, parallelism), fl in floors.items():
        if fl > 0:
            lines.append(f"network floor at {latency:g} ms, -n {parallelism}: {fl:.2f} s (tiles x latency / n)")
    for r in rows:
        if r["contender"] == "ours-open-offline":
            lines.append(f"ours-open-offline: dz.open of the cached image, offline, {r['open_s']:.3f} s "
                         f"({r['seconds']:.2f} s for a fresh process with the import, {r['import_s']:.2f} s)")
            continue
        if not r["contender"].startswith("ours"):
            continue
        if r["latency_ms"] > 0:
            srv = r["server"]
            own = srv["requests"] * r["latency_ms"] / 1000 / r["parallelism"]  # pyramids fetch more tiles
            lines.append(f"{r['contender']} at {r['latency_ms']:g} ms -n {r['parallelism']}: mean in flight "
                         f"{srv['mean_in_flight']:.1f} of {r['parallelism']} (max {srv['max_in_flight']}); "
                         f"{srv['requests']} requests: floor {own:.2f} s; first request to last response "
                         f"{srv['busy_s']:.2f} s = {srv['busy_s'] / own:.2f}x, whole run {r['seconds'] / own:.2f}x")
        fl = floors.get((r["latency_ms"], r["parallelism"]), 0.0)
        cpu = bound["png_bound_s"] if r["contender"].startswith("ours-png") else bound["tif_bound_s"]
        ref = max(fl, cpu)
        if r["latency_ms"] > 0 and fl >= cpu:
            continue  # said above, with the floor of the requests this row made
        lines.append(f"{r['contender']} at {r['latency_ms']:g} ms -n {r['parallelism']}: {r['seconds']:.2f} s = "
                     f"{r['seconds'] / ref:.2f}x the {'network floor' if fl >= cpu else 'CPU bound'} ({ref:.2f} s)")
    png = next((r for r in rows if r["contender"] == "ours-png" and r["latency_ms"] == 0), None)
    pil6 = next((r for r in rows if r["contender"] == "naive-png" and r["latency_ms"] == 0), None)
    if png and pil6:
        lines.append(f"ours-png file / Pillow level-6 file: {png['out_mib'] / pil6['out_mib']:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
