"""Custom tiles.yaml: the expression evaluator, the tile enumeration, the grid, and end to end."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers._expr import Expr, ExprError, render
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.custom_yaml import (
    MAX_TILES,
    CustomLevel,
    CustomYamlDezoomer,
    UrlTemplate,
    enumerate_tiles,
    parse_config,
    variable_values,
)
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer

from .fmt_helpers import DATA, FAST, Driver, load, not_found, read, serve_dict, urls

C = CustomYamlDezoomer()


def parse(url: str, text: str | bytes, **more: bytes) -> list[dz.model.Image]:
    data = text.encode() if isinstance(text, str) else text
    return Driver(serve_dict({url: data, **more})).run(C, url)


# --- expressions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("x + y/2", 5), ("-7 / 2", -3), ("-7 % 2", -1), ("7 % -2", 1), ("7 / 2.0", 3.5), ("2 ^ 10", 1024.0),
        ("x * tile_size", 0), ('str::substring("hello", 1, 3)', "el"), ('if(y > 1, "a", "b")', "a"),
        ("x == 0 && !(y < 3)", True), ("x != 0 || false", False), ('"a" + "b"', "ab"), ("min(3, y, 7)", 3),
        ("floor(7 / 2.0)", 3.0), ("(x, \"-\", y)", (0, "-", 10)), ("", ()),
    ],
)
def test_evalexpr_semantics(expr: str, expected: object) -> None:
    assert Expr(expr).eval({"x": 0, "y": 10, "tile_size": 256}) == expected


@pytest.mark.parametrize(
    "expr",
    ['__import__("os")', "x.__class__", "[1]", "{1: 2}", "lambda: 1", "a if b else c", "'single'", "x = 1",
     "9223372036854775807 + 1", "1 / 0", "2 ^ 100000", "open(1)", "f(x=1)", "-" * 400 + "1",
     "x" + " + x" * 400, "y"],
)
def test_unsafe_or_broken_expressions_are_refused(expr: str) -> None:
    with pytest.raises(ExprError):
        Expr(expr).eval({"x": 1})


def test_render_like_rust() -> None:
    assert [render(v) for v in (1.0, 0.5, 1e21, 1e-7, True, (1, "a", 2.5), ())] == [
        "1", "0.5", "1000000000000000000000", "0.0000001", "true", "1a2.5", ""]


def test_url_template_zero_padding() -> None:
    env = {"x": 0, "y": 10}
    assert UrlTemplate("a {{x}} b {{y}} c").eval(env) == "a 0 b 10 c"
    assert UrlTemplate("{{x:03}} {{ x + y/2 :02}}").eval(env) == "000 05"
    assert UrlTemplate("{{ 12345 :03}}").eval(env) == "12345"  # never truncated


# --- variables and enumeration ------------------------------------------------------------------


def test_tile_order_first_variable_slowest() -> None:
    conf = parse_config(b"variables:\n - {name: x, from: 0, to: 1}\n - {name: y, from: 0, to: 1}\n"
                        b"url_template: '{{x}}/{{y}}'\n")
    assert enumerate_tiles(conf) == [("0/0", 0, 0), ("0/1", 0, 1), ("1/0", 1, 0), ("1/1", 1, 1)]


def test_positions_spread_over_unused_variables_and_later_tiles_win() -> None:
    conf = parse_config(b"variables:\n - {name: y, from: 0, to: 2}\n - {name: x, from: 0, to: 1}\n"
                        b" - {name: k, from: 0, to: 1}\nx_template: 'x * 10'\ny_template: 'y * 5 + 0 * k'\n"
                        b"url_template: '{{x}}-{{y}}-{{k}}'\n")
    tiles = enumerate_tiles(conf)
    assert [(x, y) for _, x, y in tiles] == [(10 * x, 5 * y) for y in range(3) for x in range(2) for _ in range(2)]
    (image,) = parse("https://h/tiles.yaml", b"width: 20\nheight: 15\n" + yaml_text(conf))
    assert urls(image.levels[0]) == [f"https://h/{x}-{y}-1" for y in range(3) for x in range(2)]  # k=1 last


def yaml_text(conf: dict) -> bytes:
    import yaml

    return yaml.safe_dump(conf).encode()


def test_yaml_constants_in_templates() -> None:
    conf = parse_config(b"variables:\n - {name: x, from: 0, to: 1}\n - {name: y, from: 0, to: 1}\n"
                        b" - {name: tile_size, value: 100}\nurl_template: '{{x*tile_size}}/{{y*tile_size}}'\n")
    assert [t[0] for t in enumerate_tiles(conf)] == ["0/0", "0/100", "100/0", "100/100"]


@pytest.mark.parametrize(
    ("item", "values"),
    [({"name": "a", "from": 0, "to": 3}, [0, 1, 2, 3]), ({"name": "a", "from": 5, "to": 0, "step": -2}, [5, 3, 1]),
     ({"name": "a", "from": 0, "to": 10, "step": 4}, [0, 4, 8]), ({"name": "a", "value": 7}, [7])],
)
def test_variable_ranges(item: dict, values: list[int]) -> None:
    assert list(variable_values(item)[1]) == values


@pytest.mark.parametrize(
    "item",
    [{"name": "a b", "from": 0, "to": 1}, {"name": "a", "from": 3, "to": 0}, {"name": "a", "from": 0, "to": 1, "step": 0},
     {"name": "a", "from": 0, "to": 1 << 40}, {"name": "a", "from": "0", "to": 1}, {"name": "a", "value": True},
     {"from": 0, "to": 1}, "x"],
)
def test_bad_variables(item: object) -> None:
    with pytest.raises(MetadataError):
        variable_values(item)


def test_product_is_capped() -> None:
    conf = parse_config(b"url_template: '{{a}}'\nvariables:\n - {name: a, from: 0, to: 2000}\n"
                        b" - {name: b, from: 0, to: 2000}\n")
    with pytest.raises(MetadataError, match=str(MAX_TILES)):
        enumerate_tiles(conf)


@pytest.mark.parametrize(
    "text",
    [b"url_template: x\n", b"variables: []\n", b"- a\n- b\n", b"url_template: [1]\nvariables: []\n",
     b"a: &a [1, 2]\nb: *a\nurl_template: x\nvariables: []\n", b"url_template: 'x\n"],
)
def test_bad_documents(text: bytes) -> None:
    with pytest.raises(MetadataError):
        parse_config(text)


# --- images --------------------------------------------------------------------------------------


def test_reference_example() -> None:
    (image,) = parse("https://example.org/tiles.yaml", read("custom/tiles.yaml"))
    (lv,) = image.levels
    assert isinstance(lv, CustomLevel) and image.title == "A Palace" and image.dezoomer == "custom"
    assert (lv.size, lv.tile_size, lv.cols, lv.rows) == ((878, 1153), (256, 256), 4, 5)
    assert lv.tile_url(3, 4) == ("https://openseadragon.github.io/example-images/highsmith/highsmith_zdata/"
                                 "TileGroup0/3-3-4.jpg")
    assert lv.headers == (("Referer", "https://openseadragon.github.io/examples/tilesource-zoomify/"),)
    assert pickle.loads(pickle.dumps(image)) == image


def test_rows_from_the_bottom_padding_and_headers() -> None:
    (image,) = parse("/home/me/museum_tiles.yaml", read("custom/museum_tiles.yaml"),
                     **{"https://images.example-museum.org/iip/40817/z7/r001_c005.jpg": _png(300, 200)})
    lv = image.levels[0]
    assert (lv.width, lv.height, lv.cols, lv.rows) == (4 * 512 + 300, 2 * 512 + 200, 5, 3)  # size of the last tile
    assert lv.tile_url(0, 0) == "https://images.example-museum.org/iip/40817/z7/r003_c001.jpg"
    assert dict(lv.headers)["Cookie"] == "session=4f2a9c"


def test_descending_steps_and_string_functions() -> None:
    (image,) = parse("https://maps.example.net/descending.tiles.yaml", read("custom/descending.tiles.yaml"),
                     **{"https://maps.example.net/sheet/07-ROW2.png": _png(100, 100)})
    lv = image.levels[0]
    assert (lv.size, lv.tile_size) == ((300, 300), (100, 100))
    assert urls(lv) == [f"https://maps.example.net/sheet/0{x}-ROW{r}.png" for r in (0, 1, 2) for x in (9, 8, 7)]
    assert lv.headers == ()  # no headers: the defaults are used


def test_single_column_and_relative_urls() -> None:
    url = "https://h/dir/tiles.yaml"
    text = "url_template: 'strip_{{y}}.png'\ny_template: 'y * 64'\nvariables:\n - {name: y, from: 0, to: 2}\n"
    (image,) = parse(url, text, **{"https://h/dir/strip_2.png": _png(90, 30)})
    lv = image.levels[0]
    assert (lv.size, lv.tile_size) == ((90, 158), (90, 64)) and lv.tile_url(0, 1) == "https://h/dir/strip_1.png"


def test_failed_probe_assumes_full_tiles_or_asks_for_a_size() -> None:
    grid = "url_template: 't{{x}}{{y}}'\nx_template: 'x*10'\ny_template: 'y*10'\nvariables:\n" \
           " - {name: x, from: 0, to: 1}\n - {name: y, from: 0, to: 1}\n"
    (image,) = parse("https://h/tiles.yaml", grid)
    assert image.levels[0].size == (20, 20)
    with pytest.raises(MetadataError, match="cannot tell the image size") as info:
        parse("https://h/tiles.yaml", "url_template: 'one'\nvariables: []\n")
    assert "width and height" in info.value.hint


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("url_template: 'a{{x}}'\nx_template: 'x*x'\nvariables:\n - {name: x, from: 0, to: 3}\nwidth: 20\nheight: 2\n",
         "evenly"),
        ("url_template: 'a'\nx_template: 'x - 5'\nvariables:\n - {name: x, from: 0, to: 3}\n", "negative"),
        ("url_template: 'a{{x}}'\nx_template: '\"s\"'\nvariables:\n - {name: x, from: 0, to: 3}\n", "integer"),
        ("url_template: 'a{{ nope }}'\nvariables:\n - {name: x, from: 0, to: 3}\n", "nope"),
        ("url_template: 'a{{x}}'\nx_template: 'x * 10'\ny_template: 'x % 2 * 10'\nvariables:\n"
         " - {name: x, from: 0, to: 3}\nwidth: 40\nheight: 20\n", "fill"),
        ("url_template: 'a{{x}}'\nx_template: 'x * 10'\nvariables:\n - {name: x, from: 0, to: 3}\n"
         "width: 25\nheight: 10\n", "smaller"),
        ("url_template: 'a'\nvariables: []\nheaders: {'Bad Name': x}\nwidth: 1\nheight: 1\n", "header"),
        ("url_template: 'a'\nvariables: []\nheaders: {X-A: \"a\\r\\nb\"}\nwidth: 1\nheight: 1\n", "header"),
    ],
)
def test_bad_layouts(text: str, match: str) -> None:
    with pytest.raises(MetadataError, match=match):
        parse("https://h/tiles.yaml", text)


def test_detection() -> None:
    for url in ("https://h/tiles.yaml?token=1", "C:/maps/TILES.YAML", "./tiles.yml"):
        with pytest.raises(NeedsData):
            C.images(Context(url))
    for url in ("https://h/info.json", "https://h/tiles.yaml/x.jpg", "https://h/t.yaml"):
        with pytest.raises(WrongDezoomer):
            C.images(Context(url))


def _png(w: int, h: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


# --- end to end ---------------------------------------------------------------------------------

GRID = """url_template: "{base}/generic/tile_{{{{x}}}}_{{{{y}}}}.png"
x_template: "x * tile_size"
y_template: "y * tile_size"
variables:
  - {{ name: x, from: 0, to: 3 }}
  - {{ name: y, from: 0, to: 2 }}
  - {{ name: tile_size, value: 256 }}
"""


def test_e2e_served_yaml_with_headers(server, tmp_path) -> None:
    text = GRID.format(base="..") + ("headers:\n  X-Viewer-Token: 'abc123'\n  Referer: 'https://viewer.example/'\n"
                                     "width: 1000\nheight: 700\ntitle: Loopback grid\n")
    url = server.serve_files("/custom-e2e/", {"tiles.yaml": text})[:] + "/tiles.yaml"
    img = dz.open(url, **FAST)
    assert img.dezoomer == "custom" and img.title == "Loopback grid"
    server.reset_requests()
    result = img.save(tmp_path / "c.png", progress=False)
    np.testing.assert_array_equal(load(result.path), server.level_image("generic", 0))
    tiles = [(p, h) for p, h in zip(server.requests, server.headers_seen, strict=True) if "tile_" in p]
    assert {p for p, _ in tiles} == {f"/generic/tile_{x}_{y}.png" for x in range(4) for y in range(3)}
    assert all(h["X-Viewer-Token"] == "abc123" and h["Referer"] == "https://viewer.example/" for _, h in tiles)


def test_e2e_local_file_without_size_forced(server, tmp_path, capsys) -> None:
    path = tmp_path / "tiles.yaml"
    path.write_text(GRID.format(base=server.base_url))
    img = dz.open(str(path), dezoomer="custom", **FAST)
    assert (img.width, img.height) == (1000, 700)  # from the bottom-right tile (232×188)
    assert server.count("tile_3_2.png") == 1
    code = main(["-i", "0ms", "--dezoomer", "custom", str(path), str(tmp_path / "o.png")])
    assert code == 0, capsys.readouterr().err
    np.testing.assert_array_equal(load(tmp_path / "o.png"), server.level_image("generic", 0))


def test_e2e_missing_tiles_file(tmp_path) -> None:
    with pytest.raises(dz.DezoomifyError):
        dz.open(str(tmp_path / "tiles.yaml"), dezoomer="custom", **FAST)
    assert not_found("x").status == 404 and DATA.is_dir()
