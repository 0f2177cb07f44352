"""HAR files written by hand (recorded.py): bodies in base64 or text used instead of a fetch, caps, only
http(s) entries, cookies back to the host that received them, carried headers, candidate ranking."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.recorded import Exchange, Recording, candidates, carried, read_har
from dezoomify_nb.testing import TileServer, make_test_image

from .fmt_helpers import FAST, load


def entry(url, body=None, *, mime="application/json", b64=False, headers=(), cookies=(), status=200):
    content = {"mimeType": mime, "size": len(body or b"")}
    if body is not None:
        content["text"] = base64.b64encode(body).decode() if b64 else body.decode()
        if b64:
            content["encoding"] = "base64"
    return {"request": {"method": "GET", "url": url, "headers": [{"name": n, "value": v} for n, v in headers],
                        "cookies": [{"name": n, "value": v} for n, v in cookies]},
            "response": {"status": status, "content": content}}


def har(*entries) -> bytes:
    return json.dumps({"log": {"version": "1.2", "entries": list(entries)}}).encode()


@pytest.fixture(scope="module")
def srv():
    with TileServer(make_test_image(500, 400, seed=2), lossless=True) as s:
        yield s


@pytest.mark.parametrize("b64", [False, True])
def test_recorded_body_is_used_not_fetched(srv, tmp_path, b64):
    info = srv._route("/iiif2/info.json").body  # noqa: SLF001
    page = srv.base_url + "/museum/object/1"
    path = tmp_path / "capture.har"
    path.write_bytes(har(entry(page, b"<html></html>", mime="text/html"),
                         entry("file:///etc/passwd", b"root:x:0:0", mime="text/plain"),
                         entry(srv.base_url + "/iiif2/info.json", info, b64=b64, headers=[("Referer", page)],
                               cookies=[("session", "abc")])))
    srv.reset_requests()
    img = dz.open(path, **FAST)
    assert img.dezoomer == "iiif" and "/iiif2/info.json" not in srv.requests
    assert img.net.cookies is not None and img.net.cookies.items == (("127.0.0.1", False, "/", False, 0.0,
                                                                      "session", "abc"),)
    assert np.array_equal(load(img.save(tmp_path / "o.png", progress=False).path), srv.level_image("iiif2", 0))
    assert {h["cookie"] for h in srv.headers_seen if "cookie" in h} == {"session=abc"}


def test_body_over_the_cap_is_fetched_again(srv, tmp_path):
    info = srv._route("/iiif2/info.json").body  # noqa: SLF001
    path = tmp_path / "big.har"
    path.write_bytes(har(entry(srv.base_url + "/iiif2/info.json", info)))
    assert read_har(path.read_bytes(), "x", body_cap=len(info)).exchanges[0].body == info
    assert read_har(path.read_bytes(), "x", body_cap=len(info) - 1).exchanges[0].body is None
    srv.reset_requests()
    img = dz.open(path, max_metadata_bytes=len(info) - 1 + 4096, **FAST)  # the document itself still fits
    assert img.width == 500


def test_not_a_har_file(tmp_path):
    path = tmp_path / "x.har"
    path.write_text('{"entries": []}')
    with pytest.raises(dz.MetadataError, match="not a HAR file") as info:
        dz.open(path)
    assert "Save all as HAR" in info.value.hint
    path.write_bytes(har(entry("ftp://h/a/info.json", b"{}"), entry("file:///x/info.json", b"{}")))
    with pytest.raises(dz.NoDezoomerFound, match="saw 0 requests"):
        dz.open(path)


def test_carried_headers():
    sent = carried([("Host", "h"), ("Cookie", "a=1"), ("Accept-Encoding", "br"), ("referer", "https://p/"),
                    ("Origin", "https://p"), ("X-Token", "t"), ("Authorization", "Bearer k"), ("X-Bad", "a\r\nb")])
    assert sent == (("referer", "https://p/"), ("Origin", "https://p"), ("X-Token", "t"),
                    ("Authorization", "Bearer k"))


def test_candidates_rank_and_explain():
    tile = Exchange("https://i.org/iiif/a/0,0,512,512/512,/0/default.jpg", resource_type="image",
                    request_headers=(("Referer", "https://m.org/obj"),))
    rec = Recording("https://m.org/obj", [
        Exchange("https://m.org/obj", content_type="text/html", resource_type="document"),
        Exchange("https://m.org/api/item", content_type="application/json", body=b'{"title": "x"}'),
        Exchange("https://i.org/iiif/a/info.json", content_type="application/json", body=b"{}"),
        tile,
        Exchange("https://t.org/pano/l2/01/l2_01_03.jpg", resource_type="image"),  # no metadata: dropped
        Exchange("https://i.org/other", content_type="application/xml",
                 body=b'<?xml version="1.0"?><Image TileSize="254" Overlap="1" Format="jpg"><Size Width="9" '
                      b'Height="9"/></Image>'),
    ])
    found = candidates(rec)
    assert [(c.kind, c.url, c.dezoomer) for c in found] == [
        ("IIIF image", "https://i.org/iiif/a/info.json", "iiif"), ("Deep Zoom", "https://i.org/other", "deepzoom")]
    assert found[0].headers == (("Referer", "https://m.org/obj"),)  # what its tiles were sent with
    manifest = Exchange("https://m.org/iiif/1/manifest.json", content_type="application/json", body=b"{}")
    only = candidates(Recording(rec.page, [manifest, *rec.exchanges[:4]]))
    assert [c.dezoomer for c in only] == ["iiif_manifest"]  # its images are listed by it
    tiles_only = candidates(Recording(rec.page, [tile, rec.exchanges[4]]))
    assert [(c.kind, c.dezoomer) for c in tiles_only] == [("iiif tiles", "tile_url"), ("krpano tiles", "tile_url")]


def test_several_images_are_listed_and_picked(srv, tmp_path, capsys):
    from dezoomify_nb.cli import main

    page = srv.base_url + "/museum/room"
    path = tmp_path / "two.har"
    path.write_bytes(har(entry(page, b"<html></html>", mime="text/html"),
                         *(entry(f"{srv.base_url}/{k}/info.json", srv._route(f"/{k}/info.json").body)  # noqa: SLF001
                           for k in ("iiif2", "iiif3"))))
    both = dz.open(path, **FAST)
    assert isinstance(both, dz.ImageCollection) and len(both) == 2
    second = dz.open(path, image_index=1, **FAST)
    assert second.url.endswith("/iiif3/info.json")
    assert main(["-i", "0", "--image-index", "1", str(path), str(tmp_path / "b.png")]) == 0
    assert np.array_equal(load(tmp_path / "b.png"), srv.level_image("iiif3", 0))
    assert main(["--list", str(path)]) == 0
    listed = capsys.readouterr().out
    assert "iiif2/info.json" in listed and "iiif3/info.json" in listed


def test_a_har_whose_parse_passes_the_memory_budget_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "huge.har"
    filler = entry("https://h/tile.jpg", b"x" * (5 << 20), mime="image/jpeg", b64=True)  # ~7 MB of base64
    path.write_bytes(har(filler))
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "16MiB")  # 4 × 7 MB to parse it: over
    with pytest.raises(dz.MemoryBudgetError, match="Reading the HAR file") as info:
        dz.open(path)
    assert "without content" in info.value.hint
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "64MiB")
    with pytest.raises(dz.NoDezoomerFound, match=r"saw 1 request \(1 image\)"):  # read, and nothing in it
        dz.open(path)
