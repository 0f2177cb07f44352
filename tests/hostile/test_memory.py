"""Memory sized by the server: a collection's children, a tiles.yaml that multiplies a long literal, tiles
declared huge. Each attack runs the CLI in a watched subprocess (tests/hostile/harness.py): it must end
with one error line and a hint, quickly, in little memory; honest inputs of the same shape still work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dezoomify_nb.testing.tileserver import Response

from .conftest import FAST_CLI
from .harness import run_isolated

TRANSPORTS = ["aiohttp", "httpx"]

# --- a collection of 256 child manifests of ~1 MiB each -------------------------------------------------

CHILD_PAD = 1 << 20


def _manifest(base: str, i: int, service: str, pad: int) -> bytes:
    head = {
        "@context": "http://iiif.io/api/presentation/2/context.json",
        "@id": f"{base}/m{i}.json", "@type": "sc:Manifest", "label": f"Child {i}",
        "sequences": [{"@type": "sc:Sequence", "canvases": [
            {"@id": f"{base}/canvas/{i}", "@type": "sc:Canvas", "label": f"p{i}", "width": 1000, "height": 700,
             "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "resource": {
                 "@id": f"{service}/full/full/0/default.jpg", "@type": "dctypes:Image",
                 "service": {"@context": "http://iiif.io/api/image/2/context.json", "@id": service,
                             "profile": "http://iiif.io/api/image/2/level2.json"}}}]}]}],
        "description": "",
    }
    text = json.dumps(head)
    return (text[:-2] + "x" * pad + '"}').encode()  # the padding inside the description's quotes


def serve_collection(server, prefix: str, n: int, pad: int) -> str:
    base = server.base_url + prefix.rstrip("/")
    service = server.base_url + "/iiif2"
    root = json.dumps({
        "@context": "http://iiif.io/api/presentation/2/context.json", "@id": f"{base}/coll.json",
        "@type": "sc:Collection", "label": "big",
        "manifests": [{"@id": f"{base}/m{i}.json", "@type": "sc:Manifest", "label": f"Child {i}"} for i in range(n)],
    }).encode()

    def handler(_server, raw_path: str, _headers) -> Response:
        name = raw_path[len(prefix):].split("?")[0]
        if name == "coll.json":
            return Response(200, root, "application/json")
        if name.startswith("m") and name.endswith(".json") and name[1:-5].isdigit() and int(name[1:-5]) < n:
            return Response(200, _manifest(base, int(name[1:-5]), service, pad), "application/json")
        return Response(404, b"not found", "text/plain")

    server.add_route(prefix, handler)
    return f"{base}/coll.json"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_collection_of_big_children_is_refused_in_little_memory(server, tmp_path, transport):
    url = serve_collection(server, f"/big-coll-{transport}/", 256, CHILD_PAD)
    run = run_isolated([*FAST_CLI, "--transport", transport, url, str(tmp_path / "o.png")],
                       workdir=tmp_path / "run", seconds=60)
    run.assert_contained(rss_mb=400)
    line = run.one_error_line()
    assert run.returncode == 1 and "64 MiB" in line, run.stderr
    assert "hint:" in run.stderr and "child" in run.stderr.split("hint:")[1]
    assert not (tmp_path / "o.png").exists()
    print(f"collection 256 x 1 MiB ({transport}): peak RSS {run.peak_rss_mb:.0f} MB in {run.elapsed:.1f} s")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_collection_under_the_cap_still_opens(server, tmp_path, transport):
    url = serve_collection(server, f"/ok-coll-{transport}/", 40, CHILD_PAD)  # 40 MiB of children: fits
    run = run_isolated([*FAST_CLI, "--transport", transport, url, str(tmp_path / "o.png")],
                       workdir=tmp_path / "run", seconds=60)
    run.assert_contained(rss_mb=400)
    assert run.returncode == 0 and "Found 40 images" in run.stderr, run.stderr
    assert (tmp_path / "o.png").stat().st_size > 0
    print(f"collection 40 x 1 MiB ({transport}): peak RSS {run.peak_rss_mb:.0f} MB in {run.elapsed:.1f} s")


def test_failed_fetch_markers_pin_nothing_and_pages_are_dropped(server):
    from dezoomify_nb.errors import FetchError, NoDezoomerFound
    from dezoomify_nb.net import NetConfig
    from dezoomify_nb.net.loop import run
    from dezoomify_nb.resolve import _fetch_pages, resolve

    net = NetConfig(min_interval=0.0, retries=0, retry_delay=0.01)
    missing = server.base_url + "/no-such-prefix/m.json"
    got = run(_fetch_pages([missing], net, None))
    marker = got[missing]
    assert isinstance(marker, FetchError) and "404" in str(marker)
    assert marker.__traceback__ is None and marker.__context__ is None and marker.__cause__ is None
    # a failed resolution: its exception's traceback no longer reaches the fetched bodies
    url = serve_collection(server, "/drop-pages/", 3, 1000)
    try:
        resolve(url.replace("coll.json", "m0.json"), dezoomer="deepzoom", net=net)
    except NoDezoomerFound as exc:
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        held = [v for f in frames for v in f.f_locals.values() if isinstance(v, dict) and any(
            isinstance(x, bytes) and len(x) > 1000 for x in v.values())]
        assert held == []
    else:  # pragma: no cover
        raise AssertionError("deepzoom opened a IIIF manifest")


# --- tiles.yaml: a short file, a long literal, 2^20 tiles ------------------------------------------------

GRID = "variables:\n - {{name: x, from: 0, to: {cols}}}\n - {{name: y, from: 0, to: {rows}}}\n" \
       "x_template: x * 256\ny_template: y * 256\nwidth: {width}\nheight: {height}\nurl_template: '{url}'\n"
GRID_2_20 = GRID.replace("{cols}", "1023").replace("{rows}", "1023").replace("{width}", "262144") \
    .replace("{height}", "262144")


def test_tiles_yaml_long_literal_is_refused_at_once(serve, tmp_path):
    long_url = "http://127.0.0.1:9/" + "A" * 20_000 + "/{{x}}_{{y}}.png"  # a 20 KB file, 2^20 tiles
    url = serve({"tiles.yaml": GRID_2_20.format(url=long_url)}) + "/tiles.yaml"
    run = run_isolated([*FAST_CLI, url, str(tmp_path / "o.png")], workdir=tmp_path / "run", seconds=30)
    run.assert_contained(rss_mb=300)
    run.one_error_line()
    assert run.returncode == 1 and "at most 8192" in run.stderr and run.elapsed < 15, run.stderr
    print(f"tiles.yaml 20 KB literal x 2^20: refused, peak RSS {run.peak_rss_mb:.0f} MB in {run.elapsed:.1f} s")


def test_tiles_yaml_expressions_expanding_past_the_cap_are_refused(serve, tmp_path):
    piece = '{{"' + "B" * 900 + '"}}'  # each expression gives 900 characters: 12 of them pass 8 KiB
    url = serve({"tiles.yaml": GRID_2_20.format(url="http://127.0.0.1:9/{{x}}/" + piece * 12)}) + "/tiles.yaml"
    run = run_isolated([*FAST_CLI, url, str(tmp_path / "o.png")], workdir=tmp_path / "run", seconds=60)
    run.assert_contained(rss_mb=400)
    run.one_error_line()
    assert run.returncode == 1 and "longer than 8192" in run.stderr and run.elapsed < 15, run.stderr


def test_tiles_yaml_urls_are_made_per_tile(serve, tmp_path):
    """Just under the cap: 2^20 URLs of 8,000 characters would be 8 GB; the level keeps 4 bytes a tile."""
    template = "http://127.0.0.1:9/" + "A" * 7950 + "/{{x}}_{{y}}.png"
    url = serve({"tiles.yaml": GRID_2_20.format(url=template)}) + "/tiles.yaml"
    code = ("import dezoomify_nb as dz, pickle\n"
            f"im = dz.open({url!r}, min_interval=0, retries=0)\n"
            "lv = im.levels[0]\n"
            "print(lv.n_tiles, len(lv.tile_url(1023, 1023)), lv.tile_url(1, 2)[-12:], len(pickle.dumps(lv)))\n")
    run = run_isolated(code=code, workdir=tmp_path / "run", seconds=60)
    run.assert_contained(rss_mb=400)
    assert run.returncode == 0, run.stderr
    n, length, tail, pickled = run.stdout.split()
    assert (int(n), int(length), tail) == (1 << 20, len(template) - 11 + 9, "AAAA/1_2.png")
    assert int(pickled) < 5 * 2**20
    assert run.elapsed < 20, run.elapsed  # positions are evaluated per value of the variables they use
    print(f"tiles.yaml 2^20 x 8 KB URLs: opened, peak RSS {run.peak_rss_mb:.0f} MB in {run.elapsed:.1f} s")


# --- tiles declared huge: strips sized from the memory budget ----------------------------------------------

HUGE_DZI = ('<?xml version="1.0" encoding="UTF-8"?><Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
            'Format="png" Overlap="0" TileSize="32768"><Size Width="100000" Height="40000"/></Image>')


def _small_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 100, 50)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def huge_tiles(server):
    """A Deep Zoom image 100,000 px wide declaring 32768-px tiles, serving 256-px ones; counts tile requests."""
    tile = _small_png()
    asked: list[str] = []

    def handler(_server, raw_path: str, _headers) -> Response:
        if raw_path.endswith(".dzi"):
            return Response(200, HUGE_DZI.encode(), "application/xml")
        asked.append(raw_path)
        return Response(200, tile, "image/png")

    server.add_route("/huge-tiles/", handler)
    return server.base_url + "/huge-tiles/image.dzi", asked


@pytest.mark.parametrize("out", ["o.png", "o.tif", "o.jpg"])
def test_tiles_declared_huge_are_refused_up_front(huge_tiles, tmp_path, out):
    url, asked = huge_tiles
    run = run_isolated([*FAST_CLI, url, str(tmp_path / out)], workdir=tmp_path / "run", seconds=30,
                       env={"DEZOOMIFY_NB_MEMORY_BUDGET": "2GiB"})
    run.assert_contained(rss_mb=300)
    line = run.one_error_line()
    assert run.returncode == 1 and run.elapsed < 15, run.stderr
    if out == "o.jpg":  # JPEG's own limit comes first
        assert "65,500" in line
    else:
        assert "over the memory budget of 2 GiB" in line and "32768×32768 px tiles" in line, line
        hint = run.stderr.split("hint:")[1]
        assert "DEZOOMIFY_NB_MEMORY_BUDGET=" in hint and "--region" in hint, hint
    assert asked == [] and not (tmp_path / out).exists()  # nothing fetched, nothing written
    print(f"tiles 32768 px declared, {out}: refused, peak RSS {run.peak_rss_mb:.0f} MB in {run.elapsed:.1f} s")


def test_tiles_declared_huge_a_region_within_the_budget_streams(huge_tiles, tmp_path):
    url, asked = huge_tiles
    out = tmp_path / "r.png"
    run = run_isolated([*FAST_CLI, "--region", "0,0,600,300", url, str(out)], workdir=tmp_path / "run",
                       seconds=30, env={"DEZOOMIFY_NB_MEMORY_BUDGET": "2GiB"})
    run.assert_contained(rss_mb=400)
    assert run.returncode == 0, run.stderr
    from PIL import Image

    with Image.open(out) as im:
        arr = np.asarray(im)
    assert arr.shape == (300, 600, 3) and (arr[:256, :256] == (200, 100, 50)).all() and not arr[256:].any()
    assert len(asked) == 1


def test_jpeg_canvas_over_the_budget_suggests_png(server, tmp_path, capsys, monkeypatch):
    from .conftest import cli_error

    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "2MiB")  # the 1000×700 canvas is 2.7 MiB in Pillow
    err = cli_error(capsys, server.url("dzi-png"), tmp_path / "o.jpg")
    assert "over the memory budget of 2 MiB" in err and "PNG or TIFF" in err and "DEZOOMIFY_NB_MEMORY_BUDGET=3MiB" in err
    assert not list(tmp_path.iterdir()) and server.count(".png") == 0


@pytest.mark.parametrize("name", ["o.png", "o.tif"])
def test_small_budget_download_still_works(server, tmp_path, monkeypatch, name):
    import dezoomify_nb as dz

    from .conftest import FAST_API

    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "48MiB")
    img = dz.open(server.url("dzi-png"), **FAST_API)
    result = img.save(tmp_path / name, progress=False)
    from PIL import Image

    with Image.open(result.path) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), server.level_image("dzi-png", 0))


def test_lookahead_follows_the_budget(server, monkeypatch):
    import dezoomify_nb as dz
    from dezoomify_nb.lazy.store import TilePyramidStore
    from dezoomify_nb.lazy.strips import LevelStrips

    from .conftest import FAST_API

    img = dz.open(server.url("dzi-png"), **{**FAST_API, "parallelism": 64})
    strips = LevelStrips(TilePyramidStore(img.image, img.net), 0)
    assert strips.strip_bytes == 1000 * img.levels[0].tile_height * 3 == 762_000
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "4MiB")  # a quarter: 1 MiB, one strip ahead
    assert strips.lookahead() == 1
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "16MiB")
    assert strips.lookahead() == 5
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "none")
    assert strips.lookahead() > 5


@pytest.mark.parametrize(("text", "value"), [("2GiB", 2 << 30), ("512MiB", 512 << 20), ("512 MB", 512 << 20),
                                             ("1.5G", 3 << 29), ("123456", 123456), ("8k", 8192)])
def test_budget_sizes(text, value, monkeypatch):
    from dezoomify_nb.budget import memory_budget

    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", text)
    assert memory_budget() == value


@pytest.mark.parametrize("text", ["lots", "-1G", "nan", "inf", "1e400", "G"])
def test_bad_budget_sizes(text, monkeypatch, capsys, server, tmp_path):
    from .conftest import cli_error

    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", text)
    err = cli_error(capsys, server.url("dzi-png"), tmp_path / "o.png")
    assert "DEZOOMIFY_NB_MEMORY_BUDGET" in err


@pytest.mark.parametrize("name", ["o.iiif", "o.tif", "o.ome.zarr", "o.png"])
def test_tiles_served_smaller_than_declared(server, tmp_path, name):
    """Strips get tiles unpadded (no chunk of the declared size is made): what is missing stays black. A
    single-level source, so pyramid writers also decode the raw tiles they copy (to compute the levels below)."""
    import io

    from PIL import Image

    import dezoomify_nb as dz

    from .conftest import FAST_API

    buf = io.BytesIO()
    Image.new("RGB", (100, 60), (90, 180, 30)).save(buf, "JPEG", quality=95)
    tile = buf.getvalue()
    yaml = GRID.format(cols=2, rows=1, width=600, height=400, url="t_{{x}}_{{y}}.jpg").encode()  # 3×2 tiles

    def handler(_server, raw_path: str, _headers) -> Response:
        return Response(200, yaml, "text/yaml") if raw_path.endswith(".yaml") else Response(200, tile, "image/jpeg")

    server.add_route(f"/small-tiles-{name}/", handler)
    img = dz.open(f"{server.base_url}/small-tiles-{name}/tiles.yaml", **FAST_API)
    result = img.save(tmp_path / name, progress=False, level=0)
    assert result.ok and result.path.exists()
    if name == "o.png":
        with Image.open(result.path) as im:
            arr = np.asarray(im)
        assert arr.shape == (400, 600, 3) and not arr[60:256].any() and not arr[316:].any()
        assert not arr[:, 100:256].any() and not arr[:, 356:512].any()
        assert abs(int(arr[30, 50, 1]) - 180) < 8 and abs(int(arr[286, 562, 1]) - 180) < 8
