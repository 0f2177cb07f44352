"""krpano: template parsing, multires, cube faces, scenes, includes, and end to end on the loopback server."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.krpano import (
    MAX_INCLUDES,
    KrpanoDezoomer,
    KrpanoLevel,
    parse_multires,
    parse_template,
)
from dezoomify_nb.errors import FetchError, MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.testing import TileServer, make_test_image

from .fmt_helpers import DATA, FAST, Driver, load, not_found, read, urls

K = KrpanoDezoomer()
SITE = "https://tours.example.org/gallery/"


def parse(url: str, xml: str | bytes) -> list[dz.model.Image]:
    data = xml.encode() if isinstance(xml, str) else xml
    return K.images(Context(url, {url: data}))


def site(url: str) -> bytes | FetchError:
    """Serve tests/data/krpano/ at SITE."""
    if not url.startswith(SITE):
        return not_found(url)
    path = DATA / "krpano" / url[len(SITE):]
    return path.read_bytes() if path.is_file() else not_found(url)


def test_template_parse() -> None:
    assert parse_template("%00x%%%0y%l") == (("x", 3), ("lit", "%"), ("y", 2), ("l", 1))
    assert parse_template("a/%s/l%l/%v/%h.jpg")[1:4] == (("s", 1), ("lit", "/l"), ("l", 1))
    for bad in ("x%q.jpg", "tile%", "tile%00"):
        with pytest.raises(ValueError):
            parse_template(bad)


def test_multires_parse() -> None:
    assert parse_multires("3,6x7,8x8,9x1x4") == [(6, 7, 3), (8, 8, 3), (9, 1, 4)]
    assert parse_multires("512,640,1280") == [(640, 640, 512), (1280, 1280, 512)]
    with pytest.raises(ValueError):
        parse_multires("x,10")


def test_cube_level_gives_six_faces() -> None:
    images = parse("http://test.com", """<krpano showerrors="false" logkey="false">
        <image type="cube" multires="true" tilesize="512" progressive="false" multiresthreshold="-0.3">
            <level download="view" decode="view" tiledimagewidth="1000" tiledimageheight="100">
                <cube url="http://example.com/%s/%r/%c.jpg"/>
            </level>
        </image></krpano>""")
    assert len(images) == 6
    (lv,) = images[0].levels
    assert lv.size == (1000, 100) and lv.name == "Krpano Cube forward"
    assert urls(lv) == ["http://example.com/f/1/1.jpg", "http://example.com/f/1/2.jpg"]
    assert [im.title for im in images] == [f"Cube {s}" for s in ("forward", "back", "left", "right", "up", "down")]
    assert [urls(im.levels[0])[0][19] for im in images] == list("fblrud")


def test_flat_multires_and_spaces() -> None:
    (image,) = parse("http://test.com", '<krpano><image><flat url="level=%l x=%0x y=%0y" multires="1,2x3,3x4x3"/>'
                                         "</image></krpano>")
    small, large = image.levels[1], image.levels[0]
    assert small.size == (2, 3) and small.tile_size == (1, 1) and small.name == "Krpano Flat"
    assert large.size == (3, 4) and large.tile_size == (3, 3)
    assert urls(large) == ["http://test.com/level=2%20x=01%20y=01", "http://test.com/level=2%20x=01%20y=02"]
    assert large.tile_box(0, 1)[:2] == (0, 3)
    assert image.title is None


def test_360cities_cube_faces_with_baseindex_0() -> None:
    url = "https://www.example-pano.net/krpano/00139625.xml"
    images = parse(url, read("krpano/krpano_360cities.xml"))
    assert [im.title for im in images] == ["Left", "Right", "Front", "Back", "Up", "Down"]
    assert all(len(im.levels) == 4 for im in images)
    left = images[0]
    assert [lv.size for lv in left.levels] == [(2199, 2199), (1100, 1100), (550, 550), (275, 275)]
    assert left.levels[0].tile_url(4, 3).endswith("/cube/left/tile/512/3/3/4.jpg?orig=")
    assert left.levels[0].cols == 5 and left.levels[-1].n_tiles == 1
    assert left.levels[0].headers == (("Referer", left.levels[0].tile_url(0, 0)),)


def test_scenes_are_images_named_after_the_scene() -> None:
    url = "https://www.example-museum.fr/velazquez/santo_tomas.xml"
    images = parse(url, read("krpano/krpano_scenes.xml"))
    subject = "Saint Thomas (1618 - 1620) - Diego Velazquez - Museum of Fine Arts, Orleans ( France)"
    assert [im.title for im in images] == [f"{subject} scene_Color", f"{subject} scene_3D", f"{subject} scene_3Dcolor"]
    assert [lv.size for lv in images[0].levels][:2] == [(7424, 9590), (3712, 4796)]
    assert images[1].levels[0].tile_url(14, 18) == (
        "https://www.example-museum.fr/velazquez/03_Santo_Tomas_3D.tiles/l5/19/l5_19_15.jpg")
    assert images[0].levels[0].name == "Krpano Cylinder scene_Color"
    assert pickle.loads(pickle.dumps(images[2])) == images[2]


def test_vtour_scenes_multires_cubes_ignore_mobile() -> None:
    driver = Driver(site)
    images = driver.run(K, SITE + "vtour_tour.xml")
    assert driver.requests == [SITE + "vtour_tour.xml", SITE + "skin/vtourskin.xml"]  # include tried, missing
    assert len(images) == 12
    hall_front = images[0]
    assert hall_front.title == "scene_entrance_hall Cube forward"
    assert [lv.size for lv in hall_front.levels] == [(2560, 2560), (1280, 1280), (640, 640)]
    assert hall_front.levels[0].tile_url(4, 0) == SITE + "panos/entrance_hall.tiles/f/l3/1/l3_f_1_5.jpg"
    assert hall_front.levels[2].tile_url(1, 1) == SITE + "panos/entrance_hall.tiles/f/l1/2/l1_f_2_2.jpg"
    library = images[6:]
    assert [im.title for im in library][-1] == "scene_library Cube down"
    assert all(len(im.levels) == 2 for im in library)


def test_includes_are_followed_relative_to_the_including_file() -> None:
    driver = Driver(site)
    images = driver.run(K, SITE + "tour_includes.xml")
    assert driver.rounds == 3  # the input, its includes together, then the nested one
    assert set(driver.requests) == {SITE + "tour_includes.xml", SITE + "skin/vtourskin.xml",
                                    SITE + "scenes/flat_painting.xml", SITE + "scenes/panorama.xml",
                                    SITE + "common/panorama_levels.xml"}
    painting, room = images
    assert painting.title == "The gallery painting"
    assert [lv.size for lv in painting.levels] == [(4096, 3072), (2048, 1536), (1024, 768)]
    assert painting.levels[0].tile_url(7, 5) == SITE + "scenes/painting.tiles/l3/06/l3_06_08.jpg"
    assert room.title == "The gallery room"
    assert room.levels[0].tile_url(1, 0) == "https://tiles.example.org/room/l2/0_1.jpg"
    assert room.levels[1].tile_url(0, 0) == SITE + "common/room/l1/0_0.jpg"


def test_include_cycles_are_bounded() -> None:
    url = "http://h/a.xml"
    xml = b'<krpano><include url="a.xml"/><image tilesize="10"><flat url="t_%x_%y.png" multires="10,20x20"/></image></krpano>'
    driver = Driver(lambda u: xml)
    images = driver.run(K, url)
    assert 1 <= len(images) and len(driver.requests) == 1 and images[0].levels[0].size == (20, 20)
    chain = {f"http://h/{i}.xml": f'<krpano><include url="{i + 1}.xml"/></krpano>'.encode() for i in range(100)}
    driver = Driver(lambda u: chain.get(u, not_found(u)))
    with pytest.raises(MetadataError):
        driver.run(K, "http://h/0.xml")
    assert len(driver.requests) <= MAX_INCLUDES + 1


def test_embedding_html_page_is_followed() -> None:
    pages = {SITE + "tour.html": read("krpano/embed.html"), SITE + "vtour/tour.xml": read("krpano/vtour_tour.xml")}
    driver = Driver(lambda u: pages[u] if u in pages else not_found(u))
    images = driver.run(K, SITE + "tour.html")
    assert driver.requests[:2] == [SITE + "tour.html", SITE + "vtour/tour.xml"]
    assert len(images) == 12 and all(im.url == SITE + "vtour/tour.xml" for im in images)
    assert images[0].levels[-1].tile_url(0, 0) == SITE + "vtour/panos/entrance_hall.tiles/f/l1/1/l1_f_1_1.jpg"


def test_no_multires_is_a_clear_error() -> None:
    with pytest.raises(MetadataError, match="multires") as info:
        Driver(site).run(K, SITE + "no_multires.xml")
    assert info.value.hint


def test_encrypted_and_wrong_inputs() -> None:
    with pytest.raises(MetadataError, match="encrypted"):
        parse(SITE + "tour.xml", read("krpano/encrypted_tour.xml"))
    with pytest.raises(WrongDezoomer):
        parse(SITE + "image.dzi", b'<Image TileSize="256"><Size Width="1" Height="1"/></Image>')
    with pytest.raises(WrongDezoomer):
        parse(SITE + "x.jpg", b"\xff\xd8\xff\xe0 not xml")
    with pytest.raises(NeedsData):
        K.images(Context(SITE + "tour.xml"))


# --- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ksrv():
    with TileServer(make_test_image(1000, 700, seed=11), lossless=True) as server:
        sizes = server.level_sizes("dzi-jpg")  # largest first; Deep Zoom level L = len - 1 - k
        multires = ",".join(["256"] + [f"{w}x{h}" for w, h in reversed(sizes)])
        files = {
            "tour.xml": f"""<krpano version="1.20" title="Loopback tour">
                <include url="scenes/generic.xml"/>
                <source_details subject="Loopback"/>
                <scene name="dzi">
                  <image baseindex="0">
                    <flat url="../dzi-jpg/image_files/%l/%x_%y.jpg" multires="{multires}"/>
                  </image>
                </scene></krpano>""",
            "scenes/generic.xml": """<krpano><scene name="flat">
                <image tilesize="256" baseindex="0"><level tiledimagewidth="1000" tiledimageheight="700">
                <flat url="../../generic/tile_%x_%y.png"/></level></image></scene></krpano>""",
            "index.html": '<html><body><script>embedpano({xml:"tour.xml", target:"pano"});</script></body></html>',
        }
        base = server.serve_files("/krpano/", files)
        yield server, base


def test_e2e_scenes_include_and_levels(ksrv, tmp_path) -> None:
    server, base = ksrv
    images = dz.open_all(base + "/tour.xml", **FAST)
    assert [im.title for im in images] == ["Loopback flat", "Loopback dzi"]
    assert all(im.dezoomer == "krpano" for im in images)
    flat, dzi = images
    flat.save(tmp_path / "flat.png", progress=False)
    np.testing.assert_array_equal(load(tmp_path / "flat.png"), server.level_image("generic", 0))
    for k in (0, 1, 3):
        dzi.save(tmp_path / f"dzi{k}.png", level=k, progress=False)
        np.testing.assert_array_equal(load(tmp_path / f"dzi{k}.png"), server.level_image("dzi-jpg", k))


def test_e2e_image_index_and_forced_from_html(ksrv, tmp_path) -> None:
    server, base = ksrv
    img = dz.open(base + "/index.html", dezoomer="krpano", image_index=1, **FAST)
    assert img.title == "Loopback dzi" and (img.width, img.height) == (1000, 700)
    window = img.to_dask()[500:520, 900:1000].compute()
    np.testing.assert_array_equal(window, server.level_image("dzi-jpg", 0)[500:520, 900:1000])


def test_e2e_cli(ksrv, capsys, tmp_path) -> None:
    server, base = ksrv
    code = main(["-i", "0ms", "--dezoomer", "krpano", "--largest", base + "/tour.xml", str(tmp_path / "o.png")])
    assert code == 0, capsys.readouterr().err
    np.testing.assert_array_equal(load(tmp_path / "o.png"), server.level_image("generic", 0))


def test_level_is_frozen_and_picklable() -> None:
    lv = KrpanoLevel(10, 10, 5, 5, template=(("lit", "a_"), ("x", 2)), base_url="/tmp/tour.xml", base_index=0)
    assert pickle.loads(pickle.dumps(lv)) == lv and lv.tile_url(1, 0) == "/tmp/a_01"
