from __future__ import annotations

import io
import pickle
import re

import pytest
from dz_helpers import DATA, Driver, not_found
from PIL import Image as PILImage

from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.generic import Dichotomy, GenericDezoomer, fill, search_2d
from dezoomify_nb.errors import FetchError, MetadataError, NeedsData, WrongDezoomer

G = GenericDezoomer()
TEMPLATE = "http://t.test/map_{{X}}_{{Y}}.png"


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (w, h), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def grid_server(cols: int, rows: int, tw: int = 10, th: int = 10, last_w: int = 7, last_h: int = 3):
    cache: dict[tuple[int, int], bytes] = {}

    def serve(url: str) -> bytes | FetchError:
        x, y = map(int, re.search(r"map_(\d+)_(\d+)", url).groups())
        if x >= cols or y >= rows:
            return not_found(url)
        size = (last_w if x == cols - 1 else tw, last_h if y == rows - 1 else th)
        if size not in cache:
            cache[size] = png(*size)
        return cache[size]

    return serve


def test_3x2_grid_in_few_rounds() -> None:
    d = Driver(grid_server(3, 2))
    (image,) = d.run(G, TEMPLATE)
    (level,) = image.levels
    assert (level.cols, level.rows) == (3, 2)
    assert level.tile_size == (10, 10)
    assert level.size == (27, 13)  # exact: 2 full tiles + a 7 px edge, 1 full row + 3 px
    assert d.rounds <= 10 and len(d.requests) <= 10
    assert level.tile_url(2, 1) == "http://t.test/map_2_1.png"
    assert level.headers == (("Referer", "http://t.test/map_0_0.png"),)
    assert level.name == f"Generic image with template {TEMPLATE}"
    assert image.title is None and image.dezoomer == "generic"
    assert pickle.loads(pickle.dumps(image)) == image


def test_every_grid_up_to_10x10_in_20_requests() -> None:
    worst = 0
    for cols in range(1, 11):
        for rows in range(1, 11):
            d = Driver(grid_server(cols, rows))
            (image,) = d.run(G, TEMPLATE)
            level = image.levels[0]
            assert (level.cols, level.rows) == (cols, rows)
            assert level.size == ((cols - 1) * 10 + 7, (rows - 1) * 10 + 3)
            assert len(d.requests) == len(set(d.requests))
            worst = max(worst, len(d.requests))
    assert worst <= 20


def test_full_edge_tiles() -> None:
    d = Driver(grid_server(4, 3, tw=256, th=256, last_w=256, last_h=256))
    (image,) = d.run(G, TEMPLATE)
    assert image.levels[0].size == (1024, 768)


def test_dichotomy_1d_0_to_999_in_20_tries() -> None:
    for mystery in range(1000):
        d = Dichotomy()
        tries = 1
        guess = d.guess()
        while (guess := d.update(guess <= mystery)) is not None:
            tries += 1
            assert tries <= 20
        assert d.lo == mystery


def test_dichotomy_2d_every_grid_0_9() -> None:
    for x in range(10):
        for y in range(10):
            asked: set[tuple[int, int]] = set()

            def exists(a: int, b: int, x: int = x, y: int = y, asked: set = asked) -> bool:
                asked.add((a, b))
                return a <= x and b <= y

            assert search_2d(exists) == (x, y)
            assert len(asked) <= 20


@pytest.mark.parametrize(
    ("template", "x", "y", "expected"),
    [("a/{{x:05}}/{{Y:02}}.jpg", 10, 3, "a/00010/03.jpg"), ("a/{{X:05}}.jpg", 123456, 0, "a/123456.jpg"),
     ("{{X}}-{{Y}}-{{x}}", 1, 2, "1-2-1"), ("t_{{y}}_{{x:03}}", 7, 8, "t_8_007")],
)
def test_padding(template: str, x: int, y: int, expected: str) -> None:
    assert fill(template, x, y) == expected


def test_only_x_placeholder() -> None:
    def serve(url: str) -> bytes | FetchError:
        x = int(re.search(r"strip_(\d+)", url).group(1))
        return png(10 if x < 5 else 4, 6) if x <= 5 else not_found(url)

    d = Driver(serve)
    (image,) = d.run(G, "http://t.test/strip_{{X}}.png")
    assert image.levels[0].size == (54, 6)


def test_no_placeholder_is_wrong_dezoomer() -> None:
    with pytest.raises(WrongDezoomer):
        G.images(Context("http://t.test/map.png"))


def test_needs_first_tile() -> None:
    with pytest.raises(NeedsData) as err:
        G.images(Context(TEMPLATE))
    assert err.value.urls == ("http://t.test/map_0_0.png",)


def test_missing_or_garbage_first_tile() -> None:
    with pytest.raises(MetadataError):
        Driver(not_found).run(G, TEMPLATE)
    with pytest.raises(MetadataError):
        Driver(lambda u: b"<html>404 but status 200</html>").run(G, TEMPLATE)


def test_garbage_counts_as_outside() -> None:
    serve = grid_server(2, 2)

    def lying(url: str) -> bytes | FetchError:
        got = serve(url)
        return b"<html>soft 404</html>" if isinstance(got, FetchError) else got

    (image,) = Driver(lying).run(G, TEMPLATE)
    assert (image.levels[0].cols, image.levels[0].rows) == (2, 2)


def test_unbounded_grid_is_an_error() -> None:
    tile = png(4, 4)
    with pytest.raises(MetadataError):
        Driver(lambda u: tile).run(G, TEMPLATE)


def test_local_template(tmp_path) -> None:
    for x in range(2):
        for y in range(2):
            (tmp_path / f"map_{x}_{y}.png").write_bytes(png(8 if x == 0 else 5, 8 if y == 0 else 6))
    template = str(tmp_path / "map_{{X}}_{{Y}}.png")

    def serve(path: str) -> bytes | FetchError:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            return FetchError(path, str(exc))

    (image,) = Driver(serve).run(G, template)
    level = image.levels[0]
    assert level.size == (13, 14)
    assert level.tile_url(1, 1) == str(tmp_path / "map_1_1.png")
    assert level.headers == ()
    assert DATA.exists()
