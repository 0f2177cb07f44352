"""What the download benchmark runs: the tile tree, each contender (one per subprocess) and the CPU rates.

Contenders: ``ours-*`` (dezoomify_nb), ``naive-*`` (a thread pool + httpx + a Pillow canvas, what a typical
script does) and ``gdal-*`` (``gdal_translate`` reading the same tiles through a TMS description).
"""

from __future__ import annotations

import io
import json
import math
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

KIND = "dzi-jpg"
TILE = 256

#: contender → (description, output suffix)
CONTENDERS: dict[str, tuple[str, str]] = {
    "ours-png": ("dz.open(url).save('out.png'): streamed PNG, bands deflated on every core", ".png"),
    "ours-tif": ("dz.open(url).save('out.tif'): tiled BigTIFF pyramid, Deflate", ".tif"),
    "ours-tif-z0": ("dz.open(url).save('out.tif', compression=0): tiled BigTIFF pyramid, uncompressed", ".tif"),
    "ours-png-httpx": ("same as ours-png, NetConfig(transport='httpx') (the default is aiohttp)", ".png"),
    "ours-tif-z0-httpx": ("same as ours-tif-z0, NetConfig(transport='httpx')", ".tif"),
    "ours-open-offline": ("dz.open(url, cache=…, offline=True) of a cached image, in a fresh process", ".txt"),
    "ours-iiif": ("dz.open(url).save('out.iiif'): IIIF tile tree (byte copies) + viewer", ".iiif"),
    "ours-zarr": ("dz.open(url).save('out.ome.zarr'): OME-Zarr 0.5 pyramid", ".ome.zarr"),
    "ours-dask": ("dz.open(url).to_dask(0).compute(): into a numpy array", ".npy"),
    "naive-png": ("ThreadPoolExecutor + httpx.Client + Pillow canvas, canvas.save('out.png') (zlib 6)", ".png"),
    "naive-png-z1": ("same, canvas.save('out.png', compress_level=1)", ".png"),
    "naive-tif": ("same, canvas.save('out.tif') (uncompressed)", ".tif"),
    "gdal-png": ("gdal_translate -of PNG (TMS description of the tiles; ZLEVEL 6, the default)", ".png"),
    "gdal-png-z1": ("gdal_translate -of PNG -co ZLEVEL=1", ".png"),
    "gdal-tif": ("gdal_translate -of GTiff (uncompressed, the default)", ".tif"),
}


# ------------------------------------------------------------------------------------------------------
# the tile tree: encoded once by the test server, cached on disk
# ------------------------------------------------------------------------------------------------------
def tile_tree(size: int, cache: Path) -> Path:
    """A folder with ``dzi-jpg/image.dzi`` and every tile of every level, as the test server encodes them."""
    root = cache / f"{KIND}-{size}"
    if (root / "done").exists():
        return root
    from concurrent.futures import ThreadPoolExecutor

    from dezoomify_nb.testing import TileServer, make_test_image

    shutil.rmtree(root, ignore_errors=True)
    server = TileServer(make_test_image(size, size), tile_size=TILE)
    dzi = server._respond(f"/{KIND}/image.dzi", {})
    (root / KIND).mkdir(parents=True)
    (root / KIND / "image.dzi").write_bytes(dzi.body)
    sizes = server.level_sizes(KIND)
    n = len(sizes)
    jobs = []
    for k in range(n):
        cols, rows = server.tile_grid(KIND, k)
        (root / KIND / "image_files" / str(n - 1 - k)).mkdir(parents=True)
        jobs += [f"/{KIND}/image_files/{n - 1 - k}/{c}_{r}.jpg" for r in range(rows) for c in range(cols)]

    def encode(path: str) -> None:
        resp = server._respond(path, {})
        assert resp.status == 200, path
        (root / path.lstrip("/")).write_bytes(resp.body)

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(encode, jobs))
    (root / "done").write_text(str(len(jobs)))
    return root


def top_level(size: int) -> int:
    return math.ceil(math.log2(size))


def gdal_xml(base: str, size: int, parallelism: int, path: Path) -> Path:
    """A GDAL WMS/TMS description of the full-resolution tiles (``${x}``, ``${y}``), top-left origin."""
    z = max(0, math.ceil(math.log2(size / TILE)))
    canvas = TILE * 2**z
    path.write_text(f"""<GDAL_WMS>
  <Service name="TMS"><ServerUrl>{base}/{KIND}/image_files/{top_level(size)}/${{x}}_${{y}}.jpg</ServerUrl></Service>
  <DataWindow>
    <UpperLeftX>0</UpperLeftX><UpperLeftY>0</UpperLeftY>
    <LowerRightX>{canvas}</LowerRightX><LowerRightY>{canvas}</LowerRightY>
    <TileLevel>{z}</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY><YOrigin>top</YOrigin>
  </DataWindow>
  <BlockSizeX>{TILE}</BlockSizeX><BlockSizeY>{TILE}</BlockSizeY><BandsCount>3</BandsCount>
  <MaxConnections>{parallelism}</MaxConnections>
  <ZeroBlockHttpCodes>204,404</ZeroBlockHttpCodes>
</GDAL_WMS>
""")
    return path


# ------------------------------------------------------------------------------------------------------
# children
# ------------------------------------------------------------------------------------------------------
def status_mib(field: str) -> float:
    """``VmHWM`` (peak RSS) or ``VmRSS`` of this process in MiB (``ru_maxrss`` would carry the parent's)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def naive_canvas(url: str, parallelism: int) -> tuple[Any, int]:
    """Every level-0 tile fetched by a thread pool and pasted into one Pillow canvas (the .dzi parsed by hand)."""
    import xml.etree.ElementTree as ET
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import httpx
    from PIL import Image

    limits = httpx.Limits(max_connections=parallelism, max_keepalive_connections=parallelism)
    with httpx.Client(limits=limits, timeout=30) as client:
        root = ET.fromstring(client.get(url).raise_for_status().content)
        size = next(el for el in root if el.tag.endswith("Size"))
        W, H, ts = int(size.get("Width")), int(size.get("Height")), int(root.get("TileSize"))
        base = url[: -len(".dzi")] + f"_files/{math.ceil(math.log2(max(W, H)))}"
        tiles = [(f"{base}/{c}_{r}.{root.get('Format')}", c * ts, r * ts)
                 for r in range(math.ceil(H / ts)) for c in range(math.ceil(W / ts))]
        Image.MAX_IMAGE_PIXELS = None
        canvas = Image.new("RGB", (W, H))

        def get(tile: tuple[str, int, int]) -> tuple[Any, int, int]:
            r = client.get(tile[0]).raise_for_status()
            return Image.open(io.BytesIO(r.content)).convert("RGB"), tile[1], tile[2]

        with ThreadPoolExecutor(parallelism) as pool:
            for fut in as_completed([pool.submit(get, t) for t in tiles]):
                im, x, y = fut.result()
                canvas.paste(im, (x, y))
    return canvas, len(tiles)


def run_child(contender: str, url: str, out: str, parallelism: int) -> dict[str, Any]:
    """One contender, timed from before the metadata request to the output written."""
    if contender.startswith("gdal"):
        return run_gdal(contender, url, out, parallelism)
    rss0, cpu0, t0 = status_mib("VmRSS"), cpu_self(), time.perf_counter()
    if contender == "ours-open-offline":
        return open_offline(url, out)
    if contender.startswith("ours"):
        import dezoomify_nb as dz

        net = {"transport": "httpx"} if contender.endswith("-httpx") else {}
        img = dz.open(url, parallelism=parallelism, min_interval=0, retries=1, **net)
        tiles = img.levels[0].n_tiles
        if contender == "ours-dask":
            import numpy as np

            arr = img.to_dask(0).compute()
            seconds = time.perf_counter() - t0
            np.save(out, arr)
        else:
            img.save(out, level=0, progress=False, compression=0 if "-z0" in contender else 5)
            seconds = time.perf_counter() - t0
    else:
        canvas, tiles = naive_canvas(url, parallelism)
        {"naive-png": lambda: canvas.save(out), "naive-png-z1": lambda: canvas.save(out, compress_level=1),
         "naive-tif": lambda: canvas.save(out)}[contender]()
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "tiles": tiles, "peak_rss_mib": status_mib("VmHWM"), "rss_before_mib": rss0,
            "cpu_seconds": cpu_self() - cpu0}


def open_offline(url: str, out: str) -> dict[str, Any]:
    """Time ``dz.open(url, cache=…, offline=True)`` in a fresh interpreter (import included), after
    one online open filled the cache with the metadata; ``open_s`` is the call alone."""
    cache = out + ".cache"
    code = ("import json, sys, time; t0 = time.perf_counter(); import dezoomify_nb as dz; t1 = time.perf_counter(); "
            "img = dz.open(sys.argv[1], cache=sys.argv[2], offline=sys.argv[3] == '1'); t2 = time.perf_counter(); "
            "print(json.dumps({'import_s': t1 - t0, 'open_s': t2 - t1, 'tiles': img.levels[0].n_tiles}))")
    prime = subprocess.run([sys.executable, "-c", code, url, cache, "0"], capture_output=True, text=True, check=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, url, cache, "1"], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    Path(out).write_text(prime.stdout + proc.stdout)
    shutil.rmtree(cache, ignore_errors=True)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": seconds, "tiles": 0, "peak_rss_mib": ru.ru_maxrss / 1024, "rss_before_mib": 0.0,
            "cpu_seconds": ru.ru_utime + ru.ru_stime, "open_s": res["open_s"], "import_s": res["import_s"]}


def run_gdal(contender: str, xml: str, out: str, parallelism: int) -> dict[str, Any]:
    """``gdal_translate`` of the TMS description; its peak RSS is that of our only child (this process
    is small: ``ru_maxrss`` of a child starts from its parent's size at the fork)."""
    size = int(Path(xml).stem.rsplit("-", 1)[-1])
    fmt = ["-of", "PNG"] if contender.startswith("gdal-png") else ["-of", "GTiff"]
    if contender == "gdal-png-z1":
        fmt += ["-co", "ZLEVEL=1"]
    env = {**os.environ, "GDAL_HTTP_MAX_RETRY": "2", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": "", "GDAL_PAM_ENABLED": "NO"}
    t0 = time.perf_counter()
    proc = subprocess.run(["gdal_translate", "-q", *fmt, "-srcwin", "0", "0", str(size), str(size), xml, out],
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"gdal_translate failed: {proc.stderr[-2000:]}")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    tiles = math.ceil(size / TILE) ** 2
    return {"seconds": seconds, "tiles": tiles, "peak_rss_mib": ru.ru_maxrss / 1024, "rss_before_mib": 0.0,
            "cpu_seconds": ru.ru_utime + ru.ru_stime}


# ------------------------------------------------------------------------------------------------------
# CPU rates: what the parts cost on one core
# ------------------------------------------------------------------------------------------------------
def measure_rates(root: Path, size: int) -> dict[str, float]:
    """Megapixels per second, one thread: JPEG decode (Pillow), our PNG band encoder, Pillow's PNG."""
    import numpy as np
    from PIL import Image

    from dezoomify_nb.writers.png import PNGWriter, deflate_backend

    top = root / KIND / "image_files" / str(top_level(size))
    cols = min(math.ceil(size / TILE), 32)
    blobs = [(top / f"{c}_{r}.jpg").read_bytes() for r in range(2) for c in range(cols)]
    from dezoomify_nb.lazy import decode as dec

    t0 = time.perf_counter()
    tiles = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs]
    pillow_decode = len(blobs) * TILE * TILE / 1e6 / (time.perf_counter() - t0)
    decode, decoder = pillow_decode, "Pillow"
    if dec._simplejpeg is not None:  # what dezoomify_nb decodes JPEG tiles with
        t0 = time.perf_counter()
        for b in blobs:
            dec._decode_jpeg(b, "RGB", 4096)
        decode, decoder = len(blobs) * TILE * TILE / 1e6 / (time.perf_counter() - t0), "simplejpeg"
    strip = np.concatenate([np.concatenate(tiles[r * cols : (r + 1) * cols], axis=1) for r in range(2)], axis=0)
    mp = strip.shape[0] * strip.shape[1] / 1e6
    rows = strip.reshape(strip.shape[0], -1)
    rates: dict[str, float] = {"decode": decode, "pillow_decode": pillow_decode}
    rates["decoder"] = decoder  # type: ignore[assignment]
    writer = PNGWriter()
    for level, name in ((1, "ours_png"), (6, "ours_png_z6")):
        backend = deflate_backend(level)
        t0 = time.perf_counter()
        out, _, _ = writer._encode_band(rows, None, None, 3, backend, True)
        rates[name] = mp / (time.perf_counter() - t0)
        rates[name + "_ratio"] = len(out) / rows.size
        rates[name + "_backend"] = f"{backend[0]} {backend[2]}"  # type: ignore[assignment]
    im = Image.fromarray(strip)
    for level in (6, 1):
        buf = io.BytesIO()
        t0 = time.perf_counter()
        im.save(buf, "PNG", compress_level=level)
        rates[f"pillow_png_z{level}"] = mp / (time.perf_counter() - t0)
        rates[f"pillow_png_z{level}_ratio"] = buf.tell() / rows.size
    return rates


if __name__ == "__main__":  # contenders.py CONTENDER URL OUT PARALLELISM: one run, a JSON line
    import sys

    print(json.dumps(run_child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))), flush=True)
