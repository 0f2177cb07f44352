"""Memory sized by the server: a collection's children, a tiles.yaml that multiplies a long literal, tiles
declared huge. Each attack runs the CLI in a watched subprocess (tests/hostile/harness.py): it must end
with one error line and a hint, quickly, in little memory; honest inputs of the same shape still work."""

from __future__ import annotations

import json

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

GRID = "variables:\n - {{name: x, from: 0, to: {last}}}\n - {{name: y, from: 0, to: {last}}}\n" \
       "x_template: x * 256\ny_template: y * 256\nwidth: {side}\nheight: {side}\nurl_template: '{url}'\n"
GRID_2_20 = GRID.replace("{last}", "1023").replace("{side}", "262144")
GRID_2_18 = GRID.replace("{last}", "511").replace("{side}", "131072")


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
    """Just under the cap: 2^18 URLs of 8,000 characters would be 2 GB; the level keeps 4 bytes a tile."""
    template = "http://127.0.0.1:9/" + "A" * 7950 + "/{{x}}_{{y}}.png"
    url = serve({"tiles.yaml": GRID_2_18.format(url=template)}) + "/tiles.yaml"
    code = ("import dezoomify_nb as dz, pickle\n"
            f"im = dz.open({url!r}, min_interval=0, retries=0)\n"
            "lv = im.levels[0]\n"
            "print(lv.n_tiles, len(lv.tile_url(511, 511)), lv.tile_url(1, 2)[-12:], len(pickle.dumps(lv)))\n")
    run = run_isolated(code=code, workdir=tmp_path / "run", seconds=60)
    run.assert_contained(rss_mb=400)
    assert run.returncode == 0, run.stderr
    n, length, tail, pickled = run.stdout.split()
    assert (int(n), int(length), tail) == (1 << 18, len(template) - 11 + 7, "AAAA/1_2.png")
    assert int(pickled) < 2 * 2**20
    print(f"tiles.yaml 2^18 x 8 KB URLs: opened, peak RSS {run.peak_rss_mb:.0f} MB in {run.elapsed:.1f} s")
