"""Broken JSON and absurd geometry: rejected with a clear message before anything is allocated."""

from __future__ import annotations

import json

import pytest

import dezoomify_nb as dz
from dezoomify_nb.model import DEFAULT_MAX_PIXELS, MAX_PIXELS

from .conftest import FAST_API, cli_error, run_cli

V2 = {"@context": "http://iiif.io/api/image/2/context.json", "@id": "http://h/x", "protocol": "http://iiif.io/api/image",
      "profile": ["http://iiif.io/api/image/2/level2.json"], "width": 1000, "height": 700,
      "tiles": [{"width": 256, "scaleFactors": [1, 2, 4]}]}


def v2(**changes):
    doc = dict(V2)
    for k, v in changes.items():
        if v is ...:
            doc.pop(k, None)
        else:
            doc[k] = v
    return json.dumps(doc)


# name → info.json text; every one must fail with one clear line
BROKEN_JSON = {
    "invalid": '{"width": 1000, "height": 700, "tiles": [}',
    "truncated": v2()[:60],
    "empty-object": "{}",
    "array": "[1, 2, 3]",
    "null": "null",
    "width-wide": v2(width="wide"),
    "width-null": v2(width=None),
    "width-list": v2(width=[1000]),
    "width-object": v2(width={"px": 1000}),
    "width-bool": v2(width=True),
    "width-float": v2(width=1000.5),
    "width-nan": v2().replace('"width": 1000', '"width": NaN'),
    "width-infinity": v2().replace('"width": 1000', '"width": 1e400'),
    "missing-width": v2(width=...),
    "missing-height": v2(height=...),
    "tile-width-string": v2(tiles=[{"width": "big", "scaleFactors": [1]}]),
    "scale-factors-strings": v2(tiles=[{"width": 256, "scaleFactors": ["a", "b"]}]),
    "profile-garbage": v2(profile=[{"maxWidth": "x"}]),
    "deep-nesting": "[" * 100_000 + "]" * 100_000,
    "deep-nesting-object": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "binary": "\x00\x01\x02\xff",
}

# name → info.json text with insane geometry
ABSURD = {
    "width-4e9": v2(width=4_000_000_000),
    "height-4e9": v2(height=4_000_000_000),
    "width-negative": v2(width=-1000),
    "height-zero": v2(height=0),
    "width-2^64": v2(width=2**64),
    "tile-size-0": v2(tiles=[{"width": 0, "scaleFactors": [1]}]),
    "tile-size-negative": v2(tiles=[{"width": -256, "scaleFactors": [1]}]),
    "tile-size-huge": v2(tiles=[{"width": 10**9, "scaleFactors": [1]}]),
    "scale-factor-0": v2(tiles=[{"width": 256, "scaleFactors": [0]}]),
    "scale-factor-negative": v2(tiles=[{"width": 256, "scaleFactors": [-2, 1]}]),
    "v1-tile-width-0": json.dumps({"@context": "http://library.stanford.edu/iiif/image-api/1.1/context.json",
                                   "@id": "http://h/x", "width": 100, "height": 100, "tile_width": 0,
                                   "scale_factors": [1]}),
    "max-area-negative": v2(maxArea=-5),
}


def serve_info(serve, text):
    return serve({"info.json": text}, content_type="application/json") + "/info.json"


DEEP = ("deep-nesting", "deep-nesting-object")


@pytest.mark.parametrize("name", sorted(BROKEN_JSON))
def test_broken_json(name, serve, capsys):
    url = serve_info(serve, BROKEN_JSON[name])
    cli_error(capsys, url)
    with pytest.raises(dz.DezoomifyError):
        dz.open(url, **FAST_API)
    with pytest.raises(dz.DezoomifyError):  # forcing the dezoomer gives a MetadataError / NoDezoomerFound
        dz.open(url, dezoomer="iiif", **FAST_API)


@pytest.mark.parametrize("name", DEEP)
def test_deep_json_through_auto_detection(name, serve):
    url = serve_info(serve, BROKEN_JSON[name])
    with pytest.raises(dz.DezoomifyError):
        dz.open(url, **FAST_API)


@pytest.mark.parametrize("name", sorted(ABSURD))
def test_absurd_geometry(name, serve, capsys):
    url = serve_info(serve, ABSURD[name])
    err = cli_error(capsys, url)
    assert "Traceback" not in err
    with pytest.raises(dz.DezoomifyError):
        dz.open(url, **FAST_API)


@pytest.mark.parametrize("body", [
    '<IMAGE_PROPERTIES WIDTH="4000000000" HEIGHT="100" NUMTILES="1" TILESIZE="256"/>',
    '<IMAGE_PROPERTIES WIDTH="-100" HEIGHT="100" NUMTILES="1" TILESIZE="256"/>',
    '<IMAGE_PROPERTIES WIDTH="100" HEIGHT="100" NUMTILES="1" TILESIZE="0"/>',
    '<IMAGE_PROPERTIES WIDTH="100" HEIGHT="100" NUMTILES="1" TILESIZE="-256"/>',
    '<IMAGE_PROPERTIES WIDTH="100" HEIGHT="100" NUMTILES="1" TILESIZE="999999999999"/>',
    '<IMAGE_PROPERTIES WIDTH="9999999" HEIGHT="9999999" NUMTILES="1" TILESIZE="1"/>',
    '<IMAGE_PROPERTIES WIDTH="1e9" HEIGHT="100" NUMTILES="1" TILESIZE="256"/>',
])
def test_absurd_zoomify(body, serve, capsys):
    url = serve({"ImageProperties.xml": body}) + "/ImageProperties.xml"
    cli_error(capsys, url)
    with pytest.raises(dz.DezoomifyError):
        dz.open(url, **FAST_API)


@pytest.mark.parametrize("attrs", [
    'TileSize="0"><Size Width="100" Height="100"/>',
    'TileSize="-1"><Size Width="100" Height="100"/>',
    'TileSize="256"><Size Width="4000000000" Height="100"/>',
    'TileSize="256"><Size Width="-5" Height="100"/>',
    'TileSize="256" Overlap="-1"><Size Width="100" Height="100"/>',
    'TileSize="256" Overlap="300"><Size Width="100" Height="100"/>',
    'TileSize="1"><Size Width="9999999" Height="9999999"/>',
    'TileSize="256"><Size Width="wide" Height="100"/>',
    'TileSize="256"><Size Height="100"/>',
    'TileSize="256">',
])
def test_absurd_deepzoom(attrs, serve, capsys):
    body = f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="png" {attrs}</Image>'
    url = serve({"image.dzi": body}) + "/image.dzi"
    cli_error(capsys, url)
    with pytest.raises(dz.DezoomifyError):
        dz.open(url, **FAST_API)


def test_more_levels_than_pixels_collapse(serve):
    """Scale factors past the image size (real servers list them) collapse to 1×1, deduplicated."""
    url = serve_info(serve, v2(width=3, height=2, tiles=[{"width": 256, "scaleFactors": [2**k for k in range(21)]}]))
    img = dz.open(url, **FAST_API)
    assert [lv.size for lv in img.levels] == [(3, 2), (2, 1), (1, 1)]


def test_absurd_scale_factors_are_rejected(serve, capsys):
    url = serve_info(serve, v2(tiles=[{"width": 256, "scaleFactors": [2**k for k in range(41)]}]))
    err = cli_error(capsys, url)
    assert "invalid scale factors" in err and len(err) < 4000  # the list is abbreviated
    with pytest.raises(dz.MetadataError):
        dz.open(url, dezoomer="iiif", **FAST_API)


def test_lenient_where_harmless(serve):
    """A ``tiles`` that is not a list is ignored (tiles are synthesized), as OpenSeadragon does."""
    url = serve_info(serve, v2(tiles="many"))
    assert dz.open(url, **FAST_API).width == 1000


# --- the documented, raisable pixel cap ----------------------------------------------------------

BIG = v2(width=2_000_000, height=1_000_000)  # 2·10^12 px: under the hard cap, over the default cap


def test_default_cap_rejects_with_a_hint(serve, capsys):
    assert DEFAULT_MAX_PIXELS == 10**12 < 2 * 10**12 < MAX_PIXELS
    url = serve_info(serve, BIG)
    err = cli_error(capsys, url)
    assert "sanity cap" in err and "--max-pixels" in err
    with pytest.raises(dz.MetadataError) as info:
        dz.open(url, **FAST_API)
    assert "max_pixels" in info.value.hint


def test_cap_can_be_raised(serve, capsys):
    url = serve_info(serve, BIG)
    img = dz.open(url, max_pixels=3 * 10**12, **FAST_API)  # opening allocates nothing
    assert (img.width, img.height) == (2_000_000, 1_000_000)
    arr = img.to_dask(level=len(img.levels) - 1)
    assert arr.shape[:2] == (img.levels[-1].height, img.levels[-1].width)
    # the CLI accepts the flag (then fails later, on the tiny test server's missing tiles, not on the cap)
    code, _, err = run_cli(capsys, "--max-pixels", "3e12", "--zoom-level", "20", url, "/nonexistent-dir/x.png")
    assert "sanity cap" not in err and code == 1


def test_cap_can_be_lowered(serve, capsys):
    url = serve_info(serve, v2())
    err = cli_error(capsys, "--max-pixels", "1000", url)
    assert "700000 pixels" in err or "7e+05 pixels" in err
    with pytest.raises(dz.MetadataError):
        dz.open(url, max_pixels=1000, **FAST_API)


@pytest.mark.parametrize("bad", ["0", "-5", "wide", "1.5"])
def test_max_pixels_flag_is_validated(bad, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, "--max-pixels", bad, "x.dzi")
    assert info.value.code == 2


@pytest.mark.parametrize("bad", [0, -1, "wide", 1.5, True])
def test_max_pixels_argument_is_validated(bad):
    with pytest.raises(dz.DezoomifyError):
        dz.open("nothing.dzi", max_pixels=bad)


def test_hard_cap_is_not_raisable_past_level_validation(serve):
    url = serve_info(serve, v2(width=9_000_000, height=9_000_000))  # 8.1·10^13 > 2^44
    with pytest.raises(dz.DezoomifyError):
        dz.open(url, max_pixels=10**15, **FAST_API)
