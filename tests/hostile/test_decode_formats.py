"""Tiles and previews in formats no zoomable image uses (EPS, PDF, SVG, PSD, …) are refused before Pillow
sees them: no program runs (Pillow's EPS plugin runs Ghostscript from PATH), the failure says what the bytes
look like. The allowed formats (JPEG, PNG, WebP, GIF, TIFF, BMP, AVIF) decode to the pixels served."""

from __future__ import annotations

import io
import itertools
import json
import re
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb import imageformats
from dezoomify_nb.errors import NOT_AN_IMAGE_HINT
from dezoomify_nb.lazy.decode import decode_tile, tile_metadata
from dezoomify_nb.lazy.raw import tile_format
from dezoomify_nb.model import Level
from dezoomify_nb.testing.tileserver import Response

from .conftest import FAST_API, FAST_CLI
from .harness import run_isolated

TRANSPORTS = ["aiohttp", "httpx"]
_PREFIXES = itertools.count()


def _saved(fmt: str, mode: str = "RGB", size: tuple[int, int] = (16, 16), **options) -> bytes:
    rng = np.random.default_rng(7)
    im = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def _psd() -> bytes:
    """A raw 16x16 RGB Photoshop file (Pillow reads it; it cannot write PSD)."""
    u16, u32 = (lambda v: v.to_bytes(2, "big")), (lambda v: v.to_bytes(4, "big"))
    return (b"8BPS" + u16(1) + bytes(6) + u16(3) + u32(16) + u32(16) + u16(8) + u16(3) + bytes(12) + u16(0)
            + bytes(16 * 16 * 3))


EPS = _saved("EPS")  # "%!PS-Adobe-3.0 EPSF-3.0 … %%BoundingBox: 0 0 16 16": Pillow loads it with gs
#: name → (bytes, the Pillow plugin that would open it unrestricted or None, the refusal's wording)
HOSTILE: dict[str, tuple[bytes, str | None, str]] = {
    "eps": (EPS, "EPS", "not an allowed image format (looks like PostScript)"),
    "eps-dos": (b"\xc5\xd0\xd3\xc6" + (30).to_bytes(4, "little") + len(EPS).to_bytes(4, "little") + bytes(18) + EPS,
                "EPS", "looks like PostScript"),
    "pdf": (_saved("PDF"), None, "looks like PDF"),
    "svg": (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16">'
            b'<image href="file:///etc/passwd"/></svg>', None, "looks like SVG"),
    "psd": (_psd(), "PSD", "looks like Photoshop PSD"),
    "ico": (_saved("ICO"), "ICO", "looks like ICO"),
    "xbm": (_saved("XBM", "1"), "XBM", "looks like XBM"),
    "xpm": (b'/* XPM */\nstatic char *x[] = {\n"2 2 2 1",\n"  c #000000",\n". c #FFFFFF",\n" .",\n". ",\n};\n',
            "XPM", "looks like XPM"),
    "mpeg": (b"\x00\x00\x01\xb3\x01\x00\x10" + bytes(9), "MPEG", "looks like MPEG"),
    "jpeg2000": (_saved("JPEG2000"), "JPEG2000", "looks like JPEG 2000"),
    "tga": (_saved("TGA"), "TGA", "not an allowed image format (looks like unknown data starting 00 00 02"),
    "html": (b"<!DOCTYPE html><html><body>Please log in</body></html>", None, "looks like HTML"),
    "jpeg-then-eps": (b"\xff\xd8\xff\xe0" + EPS, None, "not a readable JPEG image"),
}
#: more formats Pillow opens when not told otherwise, for the in-process checks
MORE = {fmt: _saved(fmt, mode) for fmt, mode in [("PCX", "RGB"), ("SGI", "RGB"), ("QOI", "RGB"), ("DDS", "RGB"),
                                                  ("PPM", "RGB"), ("MSP", "1"), ("SPIDER", "L"),
                                                  ("DIB", "RGB")]}


# --- in process: the samples are real, and no plugin but the allowed ones is ever reached -----------------

def test_the_samples_are_what_pillow_would_open_unrestricted():
    for name, (data, plugin, _) in HOSTILE.items():
        if plugin is not None:
            with Image.open(io.BytesIO(data)) as im:  # opening reads headers only: EPS runs gs on load
                assert im.format == plugin, name
    for fmt, data in MORE.items():
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == fmt


def test_no_other_plugin_is_reached(monkeypatch):
    """Every opener but the allowed ones is replaced by a spy: none is called, whatever the bytes."""
    Image.init()
    reached: list[str] = []

    def spy(fmt):
        def factory(fp, filename=None):
            reached.append(fmt)
            raise SyntaxError("spy")
        return factory

    allowed = set(imageformats.allowed_formats())
    for fmt in list(Image.OPEN):
        if fmt not in allowed:
            monkeypatch.setitem(Image.OPEN, fmt, (spy(fmt), None))  # accept=None: tried on any bytes
    samples = [d for d, _, _ in HOSTILE.values()] + list(MORE.values())
    for data in samples:
        with pytest.raises(imageformats.NotAnImage):
            imageformats.open_image(data)
        assert tile_format(data) is None and tile_metadata(data) == (None, None)
    for data in ALLOWED_SAMPLES.values():
        imageformats.open_image(data).load()
    assert reached == []


def test_refusal_wording():
    level = Level(16, 16, 16, 16)
    for data, _, wording in HOSTILE.values():
        with pytest.raises(imageformats.NotAnImage, match=re.escape(wording)):
            decode_tile(data, level, 0, 0, "RGB")
    assert "looks like empty" in _refusal(b"")
    assert "looks like JSON" in _refusal(b'{"error": "no such tile"}')


def test_decrypted_tiles_are_checked_after_decryption():
    """krpano and Google Arts tiles are decrypted by ``Level.postprocess``: the check sees the plain bytes."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class XorLevel(Level):
        def postprocess(self, data: bytes) -> bytes:
            return bytes(b ^ 0x5A for b in data)

    level = XorLevel(16, 16, 16, 16)
    with pytest.raises(imageformats.NotAnImage, match="looks like PostScript"):
        decode_tile(bytes(b ^ 0x5A for b in EPS), level, 0, 0, "RGB")
    png = bytes(b ^ 0x5A for b in ALLOWED_SAMPLES["PNG"])
    assert decode_tile(png, level, 0, 0, "RGB").shape == (16, 16, 3)


def _refusal(data: bytes) -> str:
    with pytest.raises(imageformats.NotAnImage) as info:
        imageformats.check(data)
    return str(info.value)


# --- through every decode path, in a watched subprocess with a fake gs on PATH ----------------------------

_DZI = ('<?xml version="1.0"?><Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="jpg" Overlap="0" '
        'TileSize="16"><Size Width="16" Height="16"/></Image>')


def _site(server, samples: dict[str, bytes]) -> str:
    """For each sample NAME: a DZI (every tile is the sample), a generic template, a page whose og:image is the
    sample and a pnav object page whose probe tile is the sample. Returns the base URL."""
    prefix = f"/decode-{next(_PREFIXES)}/"
    base = server.base_url + prefix.rstrip("/")
    files: dict[str, tuple[bytes, str]] = {}
    for name, data in samples.items():
        files[f"{name}/image.dzi"] = (_DZI.encode(), "application/xml")
        for k in range(5):
            files[f"{name}/image_files/{k}/0_0.jpg"] = (data, "image/jpeg")
        files[f"{name}/tile_0_0.jpg"] = (data, "image/jpeg")
        files[f"{name}/preview.jpg"] = (data, "image/jpeg")
        files[f"{name}/page.html"] = (f'<html><head><meta property="og:image" content="{base}/{name}/preview.jpg">'
                                      f"</head><body>nothing zoomable</body></html>".encode(), "text/html")
        files[f"{name}/entity/OBJECT/1"] = (f'<html><head><meta property="og:image" content="{base}/{name}/img/p.jpg'
                                            f'?w=1000&amp;h=1000"></head></html>'.encode(), "text/html")
        files[f"{name}/img/p.json"] = (b'{"width": 600, "height": 400}', "application/json")
        files[f"{name}/img/p.jpg"] = (data, "image/jpeg")

    def handler(_server, raw_path: str, _headers) -> Response:
        found = files.get(urlsplit(raw_path).path[len(prefix):])
        return Response(404, b"not found") if found is None else Response(200, found[0], found[1])

    server.add_route(prefix, handler)
    return base


_PATHS_CODE = """
import json, os
import dezoomify_nb as dz
from dezoomify_nb.widgets.thumbnail import thumbnail_array
base, names, transport, out = json.loads(os.environ["DZ_ARG"])
fast = dict({fast}, transport=transport)
result = {{}}

def attempt(fn):
    try:
        fn()
    except dz.DezoomifyError as exc:
        return [type(exc).__name__, str(exc), exc.hint]
    return None

for name in names:
    r = result[name] = {{}}
    r["save"] = attempt(lambda: dz.open(f"{{base}}/{{name}}/image.dzi", **fast).save(f"{{out}}/{{name}}.png",
                                                                                    progress=False))
    img = dz.open(f"{{base}}/{{name}}/image.dzi", **fast)
    r["lazy"] = attempt(lambda: img.zarr(0)[:])
    thumb = thumbnail_array(img)
    r["thumbnail_black"] = bool(thumb is not None and not thumb.any())
    r["generic"] = attempt(lambda: dz.open(f"{{base}}/{{name}}/tile_" + "{{{{X}}}}_{{{{Y}}}}.jpg", dezoomer="generic",
                                           **fast))
    r["page"] = attempt(lambda: dz.open(f"{{base}}/{{name}}/page.html", dezoomer="page", **fast))
    r["pnav"] = attempt(lambda: dz.open(f"{{base}}/{{name}}/entity/OBJECT/1", dezoomer="pnav", **fast))
print(json.dumps(result))
"""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hostile_tiles_through_every_decode_path(server, tmp_path, transport):
    base = _site(server, {name: data for name, (data, _, _) in HOSTILE.items()})
    arg = json.dumps([base, list(HOSTILE), transport, str(tmp_path)])
    run = run_isolated(code=_PATHS_CODE.format(fast=repr(FAST_API)), env={"DZ_ARG": arg}, workdir=tmp_path / "run",
                       seconds=90)
    run.assert_contained()
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    for name, (_, _, wording) in HOSTILE.items():
        r = result[name]
        kind, message, hint = r["save"]
        assert kind == "DownloadError" and wording in message and hint == NOT_AN_IMAGE_HINT, (name, r["save"])
        kind, message, _ = r["lazy"]
        assert kind == "TileFetchError" and wording in message, (name, r["lazy"])
        assert r["thumbnail_black"], name
        for path in ("generic", "page", "pnav"):
            kind, message, hint = r[path]
            assert kind == "MetadataError" and wording in message and hint, (name, path, r[path])
    assert not list(tmp_path.glob("*.png"))  # no all-black image left behind


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cli_refuses_an_eps_tile(server, tmp_path, transport):
    base = _site(server, {"eps": EPS})
    run = run_isolated([*FAST_CLI, "--transport", transport, f"{base}/eps/image.dzi", str(tmp_path / "o.png")],
                       workdir=tmp_path / "run")
    run.assert_contained()
    assert run.returncode == 1
    assert "not an allowed image format (looks like PostScript)" in run.one_error_line()
    assert f"hint: {NOT_AN_IMAGE_HINT}" in run.stderr


def test_the_fake_gs_would_see_an_unrestricted_eps_decode(tmp_path):
    """Control: the harness does catch Pillow running gs on this EPS when formats are not restricted."""
    code = (f"import io\nfrom PIL import Image\ntry:\n    Image.open(io.BytesIO({EPS!r})).load()\n"
            "except Exception:\n    pass\n")
    run = run_isolated(code=code, workdir=tmp_path / "run", seconds=30)
    assert any(p.startswith("gs") for p in run.programs_run), run.stderr


# --- the allowed formats decode to the pixels served ----------------------------------------------------

_RNG = np.random.default_rng(11)
SOURCE = _RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8)
PALETTED = np.asarray(Image.fromarray(SOURCE).quantize(64).convert("RGB"))
#: format → (Pillow save options, lossless)
ALLOWED: dict[str, tuple[dict, bool]] = {
    "JPEG": ({"quality": 100, "subsampling": 0}, False),
    "PNG": ({}, True),
    "WEBP": ({"lossless": True}, True),
    "GIF": ({}, True),
    "TIFF": ({"compression": "tiff_lzw"}, True),
    "BMP": ({}, True),
}
if "AVIF" in imageformats.allowed_formats():
    ALLOWED["AVIF"] = ({"quality": 100, "subsampling": "4:4:4"}, False)
ALLOWED_SAMPLES = {fmt: _saved(fmt, **opts) for fmt, (opts, _) in ALLOWED.items()}


def _tiles(fmt: str, source: np.ndarray, tile: int = 16) -> dict[str, bytes]:
    opts = ALLOWED[fmt][0]
    out = {}
    for y in range(0, source.shape[0], tile):
        for x in range(0, source.shape[1], tile):
            buf = io.BytesIO()
            Image.fromarray(source[y : y + tile, x : x + tile]).save(buf, format=fmt, **opts)
            out[f"tile_{x // tile}_{y // tile}.img"] = buf.getvalue()
    return out


def _reference(tiles: dict[str, bytes], shape: tuple[int, ...], tile: int = 16) -> np.ndarray:
    """What Pillow's own decoder makes of the served tiles (unrestricted: these are honest bytes)."""
    out = np.zeros(shape, dtype=np.uint8)
    for name, data in tiles.items():
        x, y = (int(v) for v in name[5:-4].split("_"))
        a = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        out[y * tile : y * tile + a.shape[0], x * tile : x * tile + a.shape[1]] = a
    return out


@pytest.mark.parametrize("fmt", list(ALLOWED))
def test_allowed_formats_decode_to_the_served_pixels(serve, fmt):
    source = PALETTED if fmt == "GIF" else SOURCE
    tiles = _tiles(fmt, source)
    base = serve(tiles, "application/octet-stream")
    img = dz.open(base + "/tile_{{X}}_{{Y}}.img", dezoomer="generic", **FAST_API)
    got = img.zarr(0)[:]
    assert got.shape == source.shape
    np.testing.assert_array_equal(got, _reference(tiles, source.shape))
    if ALLOWED[fmt][1]:
        np.testing.assert_array_equal(got, source)
    else:
        assert np.abs(got.astype(int) - source).max() <= 12
    assert imageformats.sniff(next(iter(tiles.values()))) == fmt
