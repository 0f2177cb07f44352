"""A real tile server: the IIPImage server (Debian's ``iipimage-server``, FastCGI) behind lighttpd on
127.0.0.1, serving a pyramidal TIFF made by ``vips tiffsave --tile --pyramid``, through each of its
protocols — IIP, IIIF, Zoomify and Deep Zoom: levels, full and smaller downloads, a lazy window and the
requests it makes (counted in lighttpd's access log)."""

from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.cli import main as cli_main

from .conftest import VERSIONS, _missing, require, run
from .test_vips_producers import read_png, reduced, source_image

pytestmark = pytest.mark.conformance

IIPSRV = Path("/usr/lib/iipimage-server/iipsrv.fcgi")
W, H = 1500, 1000
PROTOCOLS = {
    "iip": "?FIF=img.tif&obj=IIP,1.0&obj=Max-size&obj=Tile-size&obj=Resolution-number",
    "iiif": "?IIIF=img.tif/info.json",
    "zoomify": "?Zoomify=img.tif/ImageProperties.xml",
    "deepzoom": "?DeepZoom=img.tif.dzi",
}
#: a request for one tile, by protocol (the lazy window must ask for tiles only)
TILE_REQUEST = {
    "iip": re.compile(r"[?&]JTL=\d+,\d+"),
    "iiif": re.compile(r"\?IIIF=img\.tif/\d+,\d+,\d+,\d+/[^/]+/0/default\.jpg"),
    "zoomify": re.compile(r"\?Zoomify=img\.tif/TileGroup\d+/\d+-\d+-\d+\.jpg"),
    "deepzoom": re.compile(r"\?DeepZoom=img\.tif_files/\d+/\d+_\d+\.jpg"),
}
CONF = """
server.document-root = "{root}/www"
server.port = {port}
server.bind = "127.0.0.1"
server.modules = ("mod_fastcgi", "mod_accesslog")
server.errorlog = "{root}/error.log"
accesslog.filename = "{root}/access.log"
accesslog.format = "%s %{{X-Conformance}}i %r"
fastcgi.server = ( "/fcgi-bin/iipsrv.fcgi" => ((
    "socket" => "{root}/iipsrv.sock",
    "check-local" => "disable",
    "max-procs" => 1,
    "bin-path" => "{iipsrv}",
    "bin-environment" => ( "LOGFILE" => "{root}/iipsrv.log", "VERBOSITY" => "1",
                           "FILESYSTEM_PREFIX" => "{root}/images/", "MAX_CVT" => "5000" )
)) )
"""


class IIPServer:
    def __init__(self, root: Path, port: int, proc: subprocess.Popen) -> None:
        self.root, self.port, self.proc = root, port, proc
        self.base = f"http://127.0.0.1:{port}/fcgi-bin/iipsrv.fcgi"

    def log(self) -> list[tuple[int, str, str]]:
        """``(status, X-Conformance header, request line)`` of every request so far (lighttpd's access
        log, flushed every 4 s: :meth:`mark` first)."""
        path = self.root / "access.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [(int(a), tag, line) for a, tag, line in (ln.split(" ", 2) for ln in lines if ln.strip())]

    def mark(self) -> int:
        """Send a marker request and wait until the log shows it: the index just after it (every
        request made before is logged by then)."""
        self.marks = getattr(self, "marks", 0) + 1
        tag = f"/mark.txt?{self.marks}"  # a static file of lighttpd's
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{tag}", timeout=10) as r:
            r.read()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            log = self.log()
            found = [i for i, (_, _, line) in enumerate(log) if f" {tag} " in line]
            if found:
                return found[0] + 1
            time.sleep(0.1)
        raise AssertionError(f"{tag} never reached lighttpd's access log")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def iip(tmp_path_factory):
    lighttpd = require("lighttpd")
    require("vips")
    if not IIPSRV.is_file():
        _missing(f"{IIPSRV} missing (Debian package iipimage-server)")
    VERSIONS.setdefault("lighttpd", run(lighttpd, "-v").stdout.strip().splitlines()[0])
    VERSIONS.setdefault("iipimage-server", subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "iipimage-server"], capture_output=True, text=True).stdout)
    root = tmp_path_factory.mktemp("iip")
    (root / "www").mkdir()
    (root / "www/mark.txt").write_text("mark\n")
    (root / "images").mkdir()
    src = source_image()
    Image.fromarray(src).save(root / "source.png")
    run("vips", "tiffsave", root / "source.png", root / "images/img.tif", "--tile", "--pyramid",
        "--tile-width", "256", "--tile-height", "256", "--compression", "jpeg", "--Q", "90")
    port = _free_port()
    (root / "lighttpd.conf").write_text(CONF.format(root=root, port=port, iipsrv=IIPSRV))
    with open(root / "lighttpd.out", "wb") as out:
        proc = subprocess.Popen([lighttpd, "-D", "-f", str(root / "lighttpd.conf")],
                                stdout=out, stderr=subprocess.STDOUT)
    server = IIPServer(root, port, proc)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(server.base + PROTOCOLS["iip"], timeout=5) as r:
                    assert b"Max-size:1500 1000" in r.read()
                break
            except OSError:
                assert proc.poll() is None, (root / "lighttpd.out").read_text()
                assert time.monotonic() < deadline, "lighttpd + iipsrv did not answer"
                time.sleep(0.2)
        # the server's own rendering of the whole image: its JPEG noise, the floor of our errors
        with urllib.request.urlopen(server.base + "?IIIF=img.tif/full/full/0/default.jpg", timeout=20) as r:
            (root / "whole.jpg").write_bytes(r.read())
        floor = float(np.abs(read_png(root / "whole.jpg").astype(np.int16) - src.astype(np.int16)).mean())
        assert 0.5 < floor < 8, floor
        yield server, src, floor
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_levels_downloads_and_a_lazy_window(iip, tmp_path, protocol):
    server, src, floor = iip
    url = server.base + PROTOCOLS[protocol]
    image = dz.open(url, min_interval=0, retries=0, headers={"X-Conformance": f"open-{protocol}"})
    sizes = [lv.size for lv in image.levels]
    assert sizes[:3] == [(1500, 1000), (750, 500), (375, 250)], sizes
    if protocol in ("iip", "zoomify"):  # the TIFF's own levels (libvips floors: 187 px)
        assert sizes[3] == (187, 125), sizes

    # a lazy window: only the tiles under it are asked for (their requests are tagged by the header)
    x0, y0, x1, y1 = 300, 200, 1100, 700  # 256-px tiles: columns 1–4, rows 0–2
    window = image.to_dask(0)[y0:y1, x0:x1].compute()
    err = np.abs(window.astype(np.int16) - src[y0:y1, x0:x1].astype(np.int16)).mean()
    assert err < 1.2 * floor + 0.5, (err, floor)

    # full size, with the CLI
    out = tmp_path / "full.png"
    assert cli_main([url, str(out), "--largest", "-i", "0", "-r", "0"]) == 0
    got = read_png(out)
    assert got.shape == src.shape
    err = np.abs(got.astype(np.int16) - src.astype(np.int16)).mean()
    assert err < 1.2 * floor + 0.5, (err, floor)
    shifted = np.abs(np.roll(got, 1, axis=1).astype(np.int16) - src.astype(np.int16)).mean()
    assert err < 0.8 * shifted

    # a smaller level, with the API
    again = dz.open(url, min_interval=0, retries=0, headers={"X-Conformance": f"small-{protocol}"})
    result = again.save(tmp_path / "small.png", level=2, progress=False)
    assert result.ok
    small = read_png(tmp_path / "small.png")
    assert small.shape == (250, 375, 3)
    assert np.abs(small.astype(np.int16) - reduced(src, 2).astype(np.int16)).mean() < floor

    end = server.mark()  # before reading the log: every request made so far is in it then
    log = server.log()[: end - 1]
    assert all(status == 200 for status, _, _ in log), [e for e in log if e[0] != 200]
    tiles = {tag: [line for _, t, line in log if t == tag and TILE_REQUEST[protocol].search(line)]
             for tag in (f"open-{protocol}", f"small-{protocol}")}
    if protocol == "zoomify":  # its NUMTILES fits no rule: each open() read the one-tile level's tile
        for tag, lines in tiles.items():
            assert sum("TileGroup0/0-0-0.jpg" in line for line in lines) == 1, lines
            tiles[tag] = [line for line in lines if "TileGroup0/0-0-0.jpg" not in line]
    # the window's 4 × 3 tiles, the smaller level's 2 × 1: each asked for once, nothing else
    assert len(tiles[f"open-{protocol}"]) == len(set(tiles[f"open-{protocol}"])) == 12, tiles
    assert len(tiles[f"small-{protocol}"]) == len(set(tiles[f"small-{protocol}"])) == 2, tiles


def test_httpx_transport(iip, tmp_path):
    server, src, floor = iip
    out = tmp_path / "httpx.png"
    assert cli_main([server.base + PROTOCOLS["deepzoom"], str(out), "--largest", "-i", "0", "-r", "0",
                     "--transport", "httpx"]) == 0
    assert np.abs(read_png(out).astype(np.int16) - src.astype(np.int16)).mean() < 1.2 * floor + 0.5
