from __future__ import annotations

import json
import pickle

import pytest
from dz_helpers import DATA, Driver, not_found, parse, read, urls

from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.iiif import (
    IIIFDezoomer,
    best_format,
    best_quality,
    check_tile_format,
    profile_from,
)
from dezoomify_nb.errors import DezoomifyError, FetchError, MetadataError, NeedsData, WrongDezoomer

IIIF = IIIFDezoomer()
ASM = "http://www.asmilano.it/fast/iipsrv.fcgi?IIIF=/opt/divenire/files/./tifs/05/36/536765.tif"


def one(url: str, data: bytes | dict):
    if isinstance(data, dict):
        data = json.dumps(data).encode()
    (image,) = parse(IIIF, url, data)
    return image


def test_asmilano_15001x48002_ceil_and_osd_urls() -> None:
    image = one("http://test.com/info.json", read("iiif/iipimage_v2_level1.json"))
    assert len(image.levels) == 8
    assert [lv.size for lv in image.levels[:3]] == [(15001, 48002), (7501, 24001), (3751, 12001)]
    lv64 = image.levels[6]
    assert lv64.size == (235, 751)  # ceil(15001/64), ceil(48002/64); dezoomify-rs says 234x750
    assert urls(lv64) == [
        f"{ASM}/0,0,15001,32768/235,512/0/default.jpg",
        f"{ASM}/0,32768,15001,15234/235,239/0/default.jpg",
    ]
    top = urls(image.levels[0])
    assert top[:2] == [f"{ASM}/0,0,512,512/512,512/0/default.jpg", f"{ASM}/512,0,512,512/512,512/0/default.jpg"]
    assert top[-1] == f"{ASM}/14848,47616,153,386/153,386/0/default.jpg"
    assert urls(image.levels[7]) == [f"{ASM}/full/118,376/0/default.jpg"]
    assert image.levels[0].name == "536765.tif"
    assert image.levels[0].headers == (("Referer", f"{ASM}/0,0,512,512/512,512/0/default.jpg"),)
    assert image.title is None and image.dezoomer == "iiif"
    assert pickle.loads(pickle.dumps(image)) == image


def test_max_area_crops_1024_tiles_to_512() -> None:
    data = {"width": 1024, "height": 1024, "tiles": [{"width": 1024, "scaleFactors": [1]}],
            "profile": [{"maxArea": 262144}]}
    image = one("http://ophir.dev/info.json", data)
    assert image.levels[0].tile_size == (512, 512)
    assert urls(image.levels[0]) == [
        "http://ophir.dev/0,0,512,512/512,/0/default.jpg",
        "http://ophir.dev/512,0,512,512/512,/0/default.jpg",
        "http://ophir.dev/0,512,512,512/512,/0/default.jpg",
        "http://ophir.dev/512,512,512,512/512,/0/default.jpg",
    ]
    assert urls(image.levels[1]) == ["http://ophir.dev/full/512,/0/default.jpg"]
    assert image.levels[0].name == "IIIF Image"


def test_missing_id_and_tiles() -> None:
    image = one("http://test.com/info.json", {"width": 600, "height": 350})
    assert [lv.size for lv in image.levels] == [(600, 350)]
    assert urls(image.levels[0]) == ["http://test.com/full/full/0/default.jpg"]  # one 1024 tile covers it
    image = one("http://test.com/img/info.json", {"width": 3000, "height": 2000})
    assert [lv.size for lv in image.levels] == [(3000, 2000), (1500, 1000), (750, 500)]
    assert image.levels[0].tile_url(2, 1) == "http://test.com/img/2048,1024,952,976/952,/0/default.jpg"
    assert image.levels[2].tile_url(0, 0) == "http://test.com/img/full/750,/0/default.jpg"


def test_false_positive_zoomify_json() -> None:
    with pytest.raises(WrongDezoomer):
        parse(IIIF, "https://orion2020v5b.spaceforeverybody.com/", read("iiif/zoomify_false_positive.html"))


def test_v1_1_scale_factors_10() -> None:
    yale = "https://images.britishart.yale.edu/iiif/fd470c3e-ead0-4878-ac97-d63295753f82"
    drv = Driver({"http://test.com/info.json": read("iiif/yale_v1_1.json"), f"{yale}/full/516,/0/native.png": b"png"})
    (image,) = drv.run(IIIF, "http://test.com/info.json")
    assert drv.requests[1:] == [f"{yale}/full/516,/0/native.png"]  # png only (jpg not offered): probed first
    (level,) = image.levels
    assert level.size == (516, 382)  # dezoomify-rs (floor): 515x381
    assert urls(level) == [
        "https://images.britishart.yale.edu/iiif/fd470c3e-ead0-4878-ac97-d63295753f82/full/516,/0/native.png"
    ]


def test_profile_merging() -> None:
    p = profile_from([
        "http://iiif.io/api/image/2/level0.json",
        {"supports": ["sizeByWh"], "maxWidth": 56},
        {"maxWidth": 78, "maxHeight": 94},
    ])
    assert p.formats == ["jpg"] and p.qualities == ["default"]
    assert p.supports == ["sizeByWhListed", "sizeByWh"]
    assert (p.max_width, p.max_height, p.max_area) == (56, 94, None)
    assert p.levels == [0]
    assert profile_from("level2").levels == [2]
    assert profile_from("https://iiif.io/api/image/3/level1.json").levels == [1]


@pytest.mark.parametrize(
    ("qualities", "best"),
    [([], "default"), (["color"], "color"), (["grey"], "grey"), (["zorglub"], "zorglub"),
     (["zorglub", "color"], "color"), (["bitonal", "gray"], "gray"), (["bitonal", "gray", "color"], "color"),
     (["default", "bitonal", "gray", "color"], "default"), (["native", "color"], "native")],
)
def test_quality_ranking(qualities: list[str], best: str) -> None:
    assert best_quality(qualities) == best


def test_format_ranking() -> None:
    assert best_format([]) == "jpg"
    assert best_format(["webp", "jpg", "png", "gif"]) == "jpg"
    assert best_format(["webp", "png", "gif"]) == "png"
    assert best_format(["gif", "webp", "jp2", "pdf"]) == "webp"
    assert best_format(["jp2", "pdf"]) == "jpg"  # nothing we decode: jpg, the one every server has
    assert best_format(["zorglub", "jpg"]) == "jpg"
    assert best_format(["../../etc", "webp"]) == "webp"


def test_cantaloupe_v2_level2() -> None:
    image = one("https://iiif.museum.test/iiif/2/MS_0042%2Ff001r.jp2/info.json", read("iiif/cantaloupe_v2_level2.json"))
    base = "https://iiif.museum.test/iiif/2/MS_0042%2Ff001r.jp2"
    assert [lv.size for lv in image.levels] == [(4000, 5300), (2000, 2650), (1000, 1325), (500, 663), (250, 332), (125, 166)]
    assert image.levels[0].tile_url(0, 0) == f"{base}/0,0,512,512/512,512/0/default.jpg"
    assert image.levels[0].tile_url(7, 0) == f"{base}/3584,0,416,512/416,512/0/default.jpg"
    assert urls(image.levels[5]) == [f"{base}/full/125,166/0/default.jpg"]


def test_loris_v2_tile_without_height() -> None:
    image = one("https://loris.library.test/loris/x/info.json", read("iiif/loris_v2_level2.json"))
    base = "https://loris.library.test/loris/ark%3A%2F12345%2Fxy0001.jp2"
    assert image.levels[0].tile_size == (1024, 1024)
    assert image.levels[0].tile_url(1, 2) == f"{base}/1024,2048,976,952/976,952/0/default.jpg"
    assert image.levels[1].tile_url(0, 0) == f"{base}/0,0,2000,2048/1000,1024/0/default.jpg"


def test_static_v2_level0_tree() -> None:
    image = one("https://static.iiif.test/images/sample/info.json", read("iiif/static_v2_level0.json"))
    b = "https://static.iiif.test/images/sample"
    assert [lv.size for lv in image.levels] == [(1500, 1000), (750, 500), (375, 250), (188, 125)]
    assert image.levels[0].tile_url(0, 0) == f"{b}/0,0,256,256/256,/0/default.jpg"
    assert image.levels[0].tile_url(5, 3) == f"{b}/1280,768,220,232/220,/0/default.jpg"
    assert image.levels[1].tile_url(2, 1) == f"{b}/1024,512,476,488/238,/0/default.jpg"
    assert urls(image.levels[2]) == [f"{b}/0,0,1024,1000/256,/0/default.jpg", f"{b}/1024,0,476,1000/119,/0/default.jpg"]
    assert urls(image.levels[3]) == [f"{b}/full/188,/0/default.jpg"]


def test_v2_full_size_when_full_width() -> None:
    image = one("http://h/i/info.json", {"@context": "http://iiif.io/api/image/2/context.json", "@id": "http://h/i",
                                         "width": 600, "height": 2000,
                                         "tiles": [{"width": 1024, "scaleFactors": [1, 2]}]})
    assert urls(image.levels[0]) == ["http://h/i/0,0,600,1024/full/0/default.jpg",
                                     "http://h/i/0,1024,600,976/full/0/default.jpg"]
    assert urls(image.levels[1]) == ["http://h/i/full/300,/0/default.jpg"]


def test_cantaloupe_v3() -> None:
    image = one("https://iiif.museum.test/iiif/3/MS_0042%2Ff001r.jp2/info.json", read("iiif/cantaloupe_v3.json"))
    base = "https://iiif.museum.test/iiif/3/MS_0042%2Ff001r.jp2"
    assert image.levels[0].tile_url(0, 0) == f"{base}/0,0,512,512/512,512/0/default.jpg"
    assert image.levels[0].tile_url(7, 10) == f"{base}/3584,5120,416,180/416,180/0/default.jpg"
    assert urls(image.levels[-1]) == [f"{base}/full/125,166/0/default.jpg"]


def test_v3_max_and_top_level_limits() -> None:
    v3 = {"@context": "http://iiif.io/api/image/3/context.json", "id": "https://h/iiif/3/x", "type": "ImageService3",
          "profile": "level1"}
    image = one("https://h/iiif/3/x/info.json", {**v3, "width": 300, "height": 200,
                                                 "tiles": [{"width": 512, "scaleFactors": [1]}]})
    assert urls(image.levels[0]) == ["https://h/iiif/3/x/full/max/0/default.jpg"]
    image = one("https://h/iiif/3/x/info.json", {**v3, "width": 4000, "height": 3000, "maxWidth": 800})
    assert image.levels[0].tile_size == (800, 800)
    assert [lv.size for lv in image.levels] == [(4000, 3000), (2000, 1500), (1000, 750), (500, 375)]
    assert image.levels[0].tile_url(0, 0) == "https://h/iiif/3/x/0,0,800,800/800,800/0/default.jpg"


def test_level0_without_tiles_uses_sizes() -> None:
    image = one("https://static.iiif.test/photos/harbour/info.json", read("iiif/static_v2_level0_sizes.json"))
    b = "https://static.iiif.test/photos/harbour"
    assert [lv.size for lv in image.levels] == [(6000, 4000), (3000, 2000), (1500, 1000), (750, 500), (375, 250)]
    assert all(lv.n_tiles == 1 and lv.tile_size == lv.size for lv in image.levels)
    assert urls(image.levels[0]) == [f"{b}/full/6000,/0/default.jpg"]  # 12000 px is not listed: not offered
    small = {"@id": "https://s.test/a", "width": 3000, "height": 2000, "profile": "http://iiif.io/api/image/2/level0.json",
             "sizes": [{"width": 750, "height": 500}, {"width": 5000, "height": 9000}]}
    image = one("https://s.test/a/info.json", small)
    assert [urls(lv) for lv in image.levels] == [["https://s.test/a/full/full/0/default.jpg"],
                                                 ["https://s.test/a/full/750,/0/default.jpg"]]
    v3 = {"@context": "http://iiif.io/api/image/3/context.json", "id": "https://s.test/b", "profile": "level0",
          "width": 300, "height": 200, "sizes": [{"width": 150, "height": 100}]}
    image = one("https://s.test/b/info.json", v3)
    assert [urls(lv) for lv in image.levels] == [["https://s.test/b/full/max/0/default.jpg"],
                                                 ["https://s.test/b/full/150,100/0/default.jpg"]]
    with pytest.raises(MetadataError):
        one("https://s.test/c/info.json", {"@id": "https://s.test/c", "width": 20000, "height": 20000,
                                           "profile": "http://iiif.io/api/image/2/level0.json"})


def test_level0_without_tiles_respects_the_size_limits() -> None:
    v3 = {"@context": "http://iiif.io/api/image/3/context.json", "id": "https://s.test/d", "profile": "level0",
          "width": 3000, "height": 2000, "sizes": [{"width": 375, "height": 250}]}
    # maxWidth 1500 (maxHeight is then 1500 too): "max" is 1500×1000, never full/3000,2000
    image = one("https://s.test/d/info.json", {**v3, "maxWidth": 1500})
    assert [(lv.size, urls(lv)) for lv in image.levels] == [
        ((1500, 1000), ["https://s.test/d/full/max/0/default.jpg"]),
        ((375, 250), ["https://s.test/d/full/375,250/0/default.jpg"])]
    # maxHeight alone, maxArea alone
    assert one("https://s.test/d/info.json", {**v3, "maxWidth": 5000, "maxHeight": 500}).levels[0].size == (750, 500)
    assert one("https://s.test/d/info.json", {**v3, "maxArea": 600_000}).levels[0].size == (948, 632)
    # within the limits: the full size, as "max"
    image = one("https://s.test/d/info.json", {**v3, "maxWidth": 3000, "maxHeight": 2000})
    assert image.levels[0].size == (3000, 2000) and urls(image.levels[0]) == ["https://s.test/d/full/max/0/default.jpg"]
    # v2: a profile's maxWidth forbids "full" past it; only the listed sizes are asked for
    v2 = {"@id": "https://s.test/e", "width": 3000, "height": 2000, "sizes": [{"width": 750, "height": 500}],
          "profile": ["http://iiif.io/api/image/2/level0.json", {"maxWidth": 1000}]}
    image = one("https://s.test/e/info.json", v2)
    assert [urls(lv) for lv in image.levels] == [["https://s.test/e/full/750,/0/default.jpg"]]


@pytest.mark.parametrize(("url", "tile"), [
    # the IIPImage server's IIIF: the service named inside the query string (no usable id)
    ("http://h/fcgi-bin/iipsrv.fcgi?IIIF=/images/a.tif/info.json",
     "http://h/fcgi-bin/iipsrv.fcgi?IIIF=/images/a.tif/0,0,256,256/256,/0/default.jpg"),
    ("http://h/iiif/a/info.json?t=17", "http://h/iiif/a/0,0,256,256/256,/0/default.jpg"),
    ("http://h/iiif/a/info.json#x", "http://h/iiif/a/0,0,256,256/256,/0/default.jpg"),
])
def test_service_base_without_id_keeps_a_query_string_path(url, tile) -> None:
    info = {"@context": "http://iiif.io/api/image/2/context.json", "width": 1000, "height": 800,
            "profile": ["http://iiif.io/api/image/2/level1.json"],
            "tiles": [{"width": 256, "scaleFactors": [1, 2, 4]}]}
    assert one(url, info).levels[0].tile_url(0, 0) == tile


def test_inline_info_in_html() -> None:
    image = one("https://viewer.test/folio1r.html", read("iiif/mirador_inline.html"))
    assert image.levels[0].size == (2400, 3200)
    assert image.levels[0].tile_url(2, 3) == "https://iiif.museum.test/iiif/2/folio1r/2048,3072,352,128/352,128/0/default.jpg"


@pytest.mark.parametrize(
    ("ident", "base"),
    [("http://localhost/iiif/abc", "http://h.test/iiif/abc"), ("https://example.org/iiif/x", "http://h.test/iiif/abc"),
     ("https://www.example.com/x", "http://h.test/iiif/abc"), ("http://127.0.0.1:8123/iiif/x", "http://127.0.0.1:8123/iiif/x"),
     ("https://examples.com/x/", "https://examples.com/x"), (None, "http://h.test/iiif/abc")],
)
def test_placeholder_ids(ident: str | None, base: str) -> None:
    data = {"width": 100, "height": 100, "@id": ident} if ident else {"width": 100, "height": 100}
    image = one("http://h.test/iiif/abc/info.json", data)
    assert image.levels[0].tile_url(0, 0) == f"{base}/full/full/0/default.jpg"


def test_local_info_json_without_id() -> None:
    path = str(DATA / "iiif" / "img" / "info.json")
    image = one(path, {"width": 2000, "height": 100})
    assert image.levels[0].tile_url(1, 0) == str(DATA / "iiif" / "img") + "/1024,0,976,100/976,/0/default.jpg"
    assert image.levels[0].headers == ()


def test_needs_data_first_and_request_urls() -> None:
    with pytest.raises(NeedsData) as err:
        IIIF.images(Context("https://h.test/iiif/abc/info.json"))
    assert err.value.urls == ("https://h.test/iiif/abc/info.json",)
    for tile in ("https://h.test/iiif/abc/full/full/0/default.jpg", "https://h.test/iiif/abc/0,0,512,512/512,/0/default.jpg",
                 "https://h.test/iiif/abc/full/max/0/color.png"):
        with pytest.raises(NeedsData) as err:
            IIIF.images(Context(tile))
        assert err.value.urls == ("https://h.test/iiif/abc/info.json",)
    with pytest.raises(WrongDezoomer):
        Driver(not_found).run(IIIF, "https://h.test/iiif/abc/full/full/0/default.jpg")


@pytest.mark.parametrize(
    "data",
    [read("deepzoom/duomo_2008.dzi"), read("deepzoom/duomo.json"), b"<html>hi</html>",
     b'{"sequences": [], "@type": "sc:Manifest"}', b"[1, 2, 3]"],
)
def test_not_iiif_is_wrong_dezoomer(data: bytes) -> None:
    with pytest.raises(WrongDezoomer):
        parse(IIIF, "http://x/page", data)


@pytest.mark.parametrize(
    "data",
    [{"width": 0, "height": 10}, {"width": 10**9, "height": 10}, {"width": 100, "height": "abc"},
     {"width": 100, "height": 100, "tiles": [{"width": 0, "scaleFactors": [1]}]},
     {"width": 100, "height": 100, "tiles": [{"width": 64, "scaleFactors": [0]}]},
     {"width": 100, "height": 100, "tiles": [{"width": 10**6, "scaleFactors": [1]}]}],
)
def test_insane_metadata(data: dict) -> None:
    with pytest.raises(MetadataError):
        one("http://x/info.json", data)


def test_id_ending_in_info_json() -> None:
    image = one("https://h.test/a/info.json", {"@id": "https://h.test/a/info.json", "width": 10, "height": 10})
    assert image.levels[0].tile_url(0, 0) == "https://h.test/a/full/full/0/default.jpg"


def test_registry_loads_the_four_dezoomers() -> None:
    from dezoomify_nb.registry import list_dezoomers

    found = list_dezoomers()
    for name in ("zoomify", "iiif", "deepzoom", "generic"):
        assert found[name].name == name


# --- tile format: jpg by default, preferredFormats, on request, fallback ---------------------------------
V3_L1 = {"@context": "http://iiif.io/api/image/3/context.json", "id": "https://f.test/i", "type": "ImageService3",
         "profile": "level1", "width": 600, "height": 400, "tiles": [{"width": 512, "scaleFactors": [1, 2]}]}
SMALLEST = "https://f.test/i/full/300,200/0/default"  # the probe: first tile of the smallest level


def formats_run(info: dict, serve: dict | None = None, **options: object) -> tuple[str, list[str]]:
    """``(format of the tiles asked for, requests made)`` for ``info`` served at https://f.test/i/info.json
    (other URLs: ``serve``, else 404), the dezoomer run as the driver runs it."""
    url = "https://f.test/i/info.json"
    table = {url: json.dumps(info).encode(), **(serve or {})}
    pages: dict = {url: table[url]}
    requests: list[str] = []
    for _ in range(4):
        try:
            (image,) = IIIF.images(Context(url, pages, options))
            return image.levels[0].tile_url(0, 0).rsplit(".", 1)[-1], requests
        except NeedsData as need:
            requests += need.urls
            pages.update({u: table.get(u) or not_found(u) for u in need.urls})
    raise AssertionError("too many rounds")


@pytest.mark.parametrize(("extra", "fmt"), [
    ({}, "jpg"),
    ({"extraFormats": ["png", "webp"]}, "jpg"),  # png listed: still jpg (OpenSeadragon, dezoomify-rs)
    ({"profile": "level2"}, "jpg"),  # level 2 implies png: still jpg
    ({"extraFormats": ["png"], "preferredFormats": ["png", "jpg"]}, "png"),
    ({"preferredFormats": ["jp2", "pdf", "webp"]}, "webp"),  # the first one we decode
    ({"preferredFormats": ["jp2"]}, "jpg"),
])
def test_tile_format_choice_needs_no_probe(extra: dict, fmt: str) -> None:
    assert formats_run({**V3_L1, **extra}) == (fmt, [])


def test_tile_format_png_when_jpg_is_not_offered_is_probed() -> None:
    info = {**V3_L1, "profile": {"formats": ["png", "gif"]}}
    assert formats_run(info, {SMALLEST + ".png": b"png"}) == ("png", [SMALLEST + ".png"])
    assert formats_run(info) == ("jpg", [SMALLEST + ".png"])  # refused (404): jpg, not probed again


def test_tile_format_on_request_and_its_fallback(caplog) -> None:
    assert formats_run(V3_L1, {SMALLEST + ".png": b"png"}, tile_format="png") == ("png", [SMALLEST + ".png"])
    assert formats_run(V3_L1, tile_format="jpg") == ("jpg", [])
    with caplog.at_level("WARNING", logger="dezoomify_nb.dezoomers.iiif"):
        assert formats_run(V3_L1, tile_format="webp") == ("jpg", [SMALLEST + ".webp"])
    assert "refused webp tiles (HTTP 404" in caplog.text and "falling back to jpg" in caplog.text
    served_500 = {SMALLEST + ".png": FetchError(SMALLEST + ".png", "HTTP 500", status=500)}
    assert formats_run(V3_L1, served_500, tile_format="png")[0] == "png"  # not a refusal of the format
    for bad in ("jp2", "../x", "PDF", 3):
        with pytest.raises(DezoomifyError) as err:
            check_tile_format(bad)
        assert "jpg" in (err.value.hint or "")
    assert check_tile_format(" PNG ") == "png"


# --- level 0 without tiles: only what the server must serve ----------------------------------------------
def test_level0_without_tiles_respects_v3_limits() -> None:
    v3 = {"@context": "http://iiif.io/api/image/3/context.json", "id": "https://s.test/d", "profile": "level0",
          "width": 4000, "height": 3000, "maxWidth": 1000,
          "sizes": [{"width": 500, "height": 375}, {"width": 2000, "height": 1500}]}
    image = one("https://s.test/d/info.json", v3)
    assert [urls(lv) for lv in image.levels] == [["https://s.test/d/full/max/0/default.jpg"],
                                                 ["https://s.test/d/full/500,375/0/default.jpg"]]
    assert [lv.size for lv in image.levels] == [(1000, 750), (500, 375)]  # max: the largest allowed
    image = one("https://s.test/d/info.json", {**v3, "maxWidth": None, "maxArea": 120_000, "sizes": []})
    assert [lv.size for lv in image.levels] == [(400, 300)]
    image = one("https://s.test/d/info.json", {**v3, "maxWidth": 5000, "maxHeight": 2000})
    assert [lv.size for lv in image.levels] == [(2666, 2000), (2000, 1500), (500, 375)]


def test_level0_without_tiles_respects_v2_profile_limits() -> None:
    v2 = {"@context": "http://iiif.io/api/image/2/context.json", "@id": "https://s.test/e", "width": 3000,
          "height": 2000, "profile": ["http://iiif.io/api/image/2/level0.json", {"maxWidth": 1000}],
          "sizes": [{"width": 750, "height": 500}, {"width": 1500, "height": 1000}]}
    image = one("https://s.test/e/info.json", v2)
    assert [urls(lv) for lv in image.levels] == [["https://s.test/e/full/750,/0/default.jpg"]]  # no full, no 1500
    image = one("https://s.test/e/info.json", {**v2, "sizes": []})
    assert [urls(lv) for lv in image.levels] == [["https://s.test/e/full/max/0/default.jpg"]]
    assert image.levels[0].size == (1000, 666)


def test_a_stated_formats_list_without_jpg_is_believed() -> None:
    """libvips' ``dzsave --layout iiif --suffix .png``: level 0 (jpg implied) but ``"formats": ["png"]``."""
    v2 = {"@context": "http://iiif.io/api/image/2/context.json", "@id": "https://f.test/i", "width": 600,
          "height": 400, "tiles": [{"width": 512, "scaleFactors": [1, 2]}],
          "profile": ["http://iiif.io/api/image/2/level0.json", {"formats": ["png"], "qualities": ["default"]}]}
    probe = "https://f.test/i/full/300,/0/default.png"
    assert formats_run(v2, {probe: b"png"}) == ("png", [probe])
    assert formats_run(v2) == ("jpg", [probe])  # png refused after all: jpg
    both = {**v2, "profile": ["http://iiif.io/api/image/2/level0.json", {"formats": ["png", "jpg"]}]}
    assert formats_run(both) == ("jpg", [])
