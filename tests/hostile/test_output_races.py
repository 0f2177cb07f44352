"""Outputs attacked from the local side: symbolic links planted at the names a writer could use, two runs
writing the same OUTFILE at once, and SIGTERM/SIGHUP in the middle of a download.

The images come from loopback Deep Zoom routes on the shared server (PNG tiles, lossless: the saved pixels
are compared exactly). A *gate* holds every tile request until each run has asked for one (the two runs then
surely overlap: both checked the free name before either finished), or until the test lets them go.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.testing import Response, make_test_image
from dezoomify_nb.writers import atomic

from .conftest import FAST_API, FAST_CLI

ROOT = Path(__file__).resolve().parents[2]
TILE = 256
_ROUTES = itertools.count()


class Gate:
    """Tile requests of the routes in ``names`` wait until every one of them has had a request (then each
    tile waits ``delay`` more), or, with ``hold``, until :meth:`release`."""

    def __init__(self, names: list[str], *, delay: float = 0.0, hold: bool = False) -> None:
        self.started = {name: threading.Event() for name in names}
        self.delay, self.hold = delay, hold
        self.released = threading.Event()
        self.tiles = 0

    def enter(self, name: str) -> None:
        self.tiles += 1
        self.started[name].set()
        if self.hold:
            self.released.wait(60)
        else:
            for event in self.started.values():
                event.wait(30)
            time.sleep(self.delay)

    def release(self) -> None:
        self.released.set()


def serve_dzi(server, image: np.ndarray, gate: Gate | None = None, name: str = "") -> str:
    """A Deep Zoom image (PNG tiles, no overlap) of ``image`` on the shared server; its .dzi URL."""
    h, w = image.shape[:2]
    top = math.ceil(math.log2(max(w, h)))
    prefix = f"/races-{next(_ROUTES)}/"
    dzi = (f'<?xml version="1.0" encoding="UTF-8"?><Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
           f'Format="png" Overlap="0" TileSize="{TILE}"><Size Width="{w}" Height="{h}"/></Image>').encode()
    full = Image.fromarray(image)

    def handler(_server, raw_path: str, _headers) -> Response:
        rel = raw_path[len(prefix):].split("?")[0]
        if rel == "image.dzi":
            return Response(200, dzi, "application/xml")
        level, tile = rel.removeprefix("image_files/").split("/")
        col, row = (int(v) for v in tile.removesuffix(".png").split("_"))
        scale = 2 ** (top - int(level))
        lw, lh = math.ceil(w / scale), math.ceil(h / scale)
        pic = full if scale == 1 else full.resize((lw, lh), Image.Resampling.BOX)
        if gate is not None:
            gate.enter(name)
        buf = io.BytesIO()
        pic.crop((col * TILE, row * TILE, min(lw, (col + 1) * TILE), min(lh, (row + 1) * TILE))).save(buf, "PNG")
        return Response(200, buf.getvalue(), "image/png")

    server.add_route(prefix, handler)
    return server.base_url + prefix + "image.dzi"


def spawn(*args: object) -> subprocess.Popen:
    """The CLI in its own process (session), stderr captured; this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "dezoomify_nb", *FAST_CLI, "--largest", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def finish(proc: subprocess.Popen, seconds: float = 60) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the run did not end in {seconds} s:\n{err}")
    return proc.returncode, err


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- symbolic links planted where the output is written ---------------------------------------------------

WRITERS = ["png", "jpg", "tif", "iiif", "ome.zarr"]


def _check_output(out: Path, ext: str, image: np.ndarray) -> None:
    h, w = image.shape[:2]
    if ext == "png":
        assert np.array_equal(pixels(out), image)
    elif ext == "jpg":
        got = pixels(out).astype(int)
        assert got.shape == image.shape and np.abs(got - image).mean() < 4
    elif ext == "tif":
        assert np.array_equal(tifffile.imread(out), image)
    elif ext == "iiif":
        info = json.loads((out / "info.json").read_text())
        assert (info["width"], info["height"]) == (w, h) and (out / "viewer.html").is_file()
    else:
        import zarr

        assert zarr.open_group(str(out), mode="r")["0"].shape == (3, h, w)
    mode = os.lstat(out).st_mode & 0o777
    assert mode == (0o777 if out.is_dir() else 0o666) & ~umask(), oct(mode)


@pytest.mark.parametrize("ext", WRITERS)
def test_planted_symlinks_are_never_followed(server, tmp_path, monkeypatch, ext):
    image = make_test_image(300, 200, seed=11)
    url = serve_dzi(server, image)
    victim_file = tmp_path / "victim.txt"
    victim_file.write_bytes(b"precious")
    victim_dir = tmp_path / "victim-dir"
    victim_dir.mkdir()
    (victim_dir / "keep.txt").write_bytes(b"keep")
    os.utime(victim_file, (1_000_000_000, 1_000_000_000))
    before = (victim_file.stat().st_mtime_ns, sorted(os.listdir(victim_dir)))
    out = tmp_path / f"out.{ext}"
    # the name writers used before (OUTFILE.partial) and the first names the random part will give
    tokens = [f"{n:08x}" for n in range(4)]
    names = [out.name + ".partial"] + [f".{out.name}.{t}.partial" for t in tokens[:3]]
    for i, name in enumerate(names):
        (tmp_path / name).symlink_to(victim_file if i % 2 == 0 else victim_dir)
    fresh = iter(tokens + [f"{n:08x}" for n in range(100, 200)])
    monkeypatch.setattr(atomic, "_token", lambda: next(fresh))
    held: list[int] = []  # a descriptor on the temporary really created (so its inode cannot be reused)

    def recording(real):
        def record(final):
            got = real(final)
            held.append(os.open(got[0] if isinstance(got, tuple) else got, os.O_RDONLY))
            return got
        return record

    for name in ("create_temp_file", "create_temp_dir"):
        monkeypatch.setattr(atomic, name, recording(getattr(atomic, name)))

    result = dz.open(url, **FAST_API).save(out, progress=False, largest=True)

    assert result.path == out
    try:  # the output is the temporary made exclusively, written in place (not deleted and made again)
        assert len(held) == 1 and os.path.samestat(os.fstat(held[0]), os.lstat(out))
    finally:
        for fd in held:
            os.close(fd)
    assert victim_file.read_bytes() == b"precious" and (victim_dir / "keep.txt").read_bytes() == b"keep"
    assert (victim_file.stat().st_mtime_ns, sorted(os.listdir(victim_dir))) == before
    for i, name in enumerate(names):  # the links are left as they were
        assert os.readlink(tmp_path / name) == str(victim_file if i % 2 == 0 else victim_dir)
    assert sorted(os.listdir(tmp_path)) == sorted([*names, out.name, "victim.txt", "victim-dir"])
    _check_output(out, ext, image)


def test_symlink_at_the_final_name(server, tmp_path):
    image = make_test_image(300, 200, seed=12)
    url = serve_dzi(server, image)
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    out = tmp_path / "out.png"
    out.symlink_to(victim)
    with pytest.raises(dz.WriterError, match="already exists"):
        dz.open(url, **FAST_API).save(out, progress=False)
    # --overwrite replaces the link itself, never the file it points to
    dz.open(url, **FAST_API).save(out, progress=False, overwrite=True)
    assert not out.is_symlink() and np.array_equal(pixels(out), image)
    assert victim.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["out.png", "victim.png"]


# --- two runs, one OUTFILE ------------------------------------------------------------------------------------

@pytest.mark.parametrize("ext,overwrite", [("png", False), ("png", True), ("iiif", False)])
def test_two_runs_write_the_same_outfile(server, tmp_path, ext, overwrite):
    images = [make_test_image(600, 400, seed=21), make_test_image(500, 300, seed=22)]
    gate = Gate(["a", "b"], delay=0.05)
    urls = [serve_dzi(server, im, gate, name) for im, name in zip(images, ["a", "b"], strict=True)]
    out = tmp_path / f"both.{ext}"
    extra = ["--overwrite"] if overwrite else []
    procs = [spawn(*extra, "-n", "2", url, out) for url in urls]
    (code_a, err_a), (code_b, err_b) = (finish(p) for p in procs)
    errs = [err_a, err_b]
    assert all("Traceback" not in e for e in errs), errs
    assert all(ev.is_set() for ev in gate.started.values())  # both were downloading at once
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != out.name)
    assert leftovers == [], leftovers  # no temporary left by either run
    if ext == "png":
        got = pixels(out)
        matches = [i for i, im in enumerate(images) if got.shape == im.shape and np.array_equal(got, im)]
        assert len(matches) == 1, "the file is not exactly one run's image"
    else:
        info = json.loads((out / "info.json").read_text())
        matches = [i for i, im in enumerate(images) if (info["width"], info["height"]) == im.shape[1::-1]]
        assert len(matches) == 1
    if overwrite:
        assert (code_a, code_b) == (0, 0), errs
        return
    assert sorted([code_a, code_b]) == [0, 1], errs
    winner = [code_a, code_b].index(0)
    assert matches == [winner], "the run that reported success does not own the file"
    loser = errs[1 - winner].splitlines()
    errors = [ln for ln in loser if ln.startswith("error:")]
    hints = [ln for ln in loser if ln.startswith("hint:")]
    assert len(errors) == 1 and len(hints) == 1, loser
    assert "not overwritten" in errors[0] and "own output name" in hints[0]


# --- SIGTERM and SIGHUP end like Ctrl-C ---------------------------------------------------------------------

def wait_for_download(proc: subprocess.Popen, gate: Gate, folder: Path, out: Path) -> None:
    """Until a tile was asked for and the run's temporary exists (then the run is mid-download)."""
    deadline = time.monotonic() + 60
    while not (gate.tiles and list(folder.glob(f".{out.name}.*.partial"))):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.02)


@pytest.mark.parametrize("signum,ext,transport", [
    (signal.SIGTERM, "png", "aiohttp"),
    (signal.SIGHUP, "tif", "httpx"),  # requests blocked in worker threads must not delay the exit
    (signal.SIGTERM, "iiif", "aiohttp"),
    (signal.SIGINT, "ome.zarr", "aiohttp"),
])
def test_stop_signal_mid_download(server, tmp_path, signum, ext, transport):
    gate = Gate(["x"], hold=True)
    url = serve_dzi(server, make_test_image(600, 400, seed=31), gate, "x")
    out = tmp_path / f"stopped.{ext}"
    # a long --timeout and the default retry: neither may keep the process alive or print more
    proc = spawn("-n", "2", "--timeout", "60s", "-r", "1", "--transport", transport, url, out)
    try:
        wait_for_download(proc, gate, tmp_path, out)
        proc.send_signal(signum)
        start = time.monotonic()
        code, err = finish(proc, 30)
        elapsed = time.monotonic() - start
    finally:
        gate.release()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 128 + signum, err
    assert elapsed < 10, f"{elapsed:.1f} s from the signal to the exit"
    assert "Traceback" not in err
    message = "error: interrupted" if signum == signal.SIGINT else f"error: stopped by {signal.Signals(signum).name}"
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("tiles:")]  # (progress bar)
    assert lines == [message], err
    assert list(tmp_path.iterdir()) == []  # no temporary, nothing under the final name


def test_ignored_hangup_stays_ignored(server, tmp_path):
    """``nohup dezoomify-nb …``: SIGHUP is ignored when the run starts, so the run goes on."""
    gate = Gate(["x"], hold=True)
    image = make_test_image(600, 400, seed=32)
    url = serve_dzi(server, image, gate, "x")
    out = tmp_path / "nohup.png"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = "import signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); from dezoomify_nb.cli import main; " \
           "sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, *FAST_CLI, "--largest", url, str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        wait_for_download(proc, gate, tmp_path, out)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert proc.poll() is None
    finally:
        gate.release()
    code_, err = finish(proc)
    assert code_ == 0, err
    assert np.array_equal(pixels(out), image)
