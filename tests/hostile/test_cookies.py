"""``--cookies cookies.txt`` / ``cookies=``: each cookie goes only where its domain, path, secure flag and
expiry say, to metadata and tiles, on both transports.

Host A is ``localhost`` (the metadata), host B is ``127.0.0.1`` (the tiles): the same loopback server told
apart by the ``Host`` it is asked for.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import time

import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.net.config import NetConfig
from dezoomify_nb.net.cookies import CookieSet, cookie_header, load_cookies
from dezoomify_nb.testing.tileserver import Response

from .conftest import FAST_API, cli_error, run_cli

TRANSPORTS = ["aiohttp", "httpx"]
_REGION = re.compile(r"/(\d+),(\d+),(\d+),(\d+)/(\d+),/0/default\.\w+$")
FUTURE, PAST = int(time.time()) + 86400 * 30, int(time.time()) - 86400

COOKIES_TXT = f"""# Netscape HTTP Cookie File
# exported by a browser extension

localhost\tFALSE\t/\tFALSE\t0\tmeta\tm1
#HttpOnly_127.0.0.1\tFALSE\t/ck-tiles\tFALSE\t{FUTURE}\ttile\tt1
127.0.0.1\tFALSE\t/ck-tiles/img\tFALSE\t0\tdeep\td1
127.0.0.1\tFALSE\t/elsewhere\tFALSE\t0\twrongpath\tx
127.0.0.1\tFALSE\t/ck-til\tFALSE\t0\tprefix\tx
127.0.0.1\tFALSE\t/\tTRUE\t0\tsecureonly\tx
127.0.0.1\tFALSE\t/\tFALSE\t{PAST}\texpired\tx
.example.org\tTRUE\t/\tFALSE\t0\tforeign\tx
"""


@pytest.fixture
def hosts(server):
    """``/ck-info/<tiles URL, / as ~>``: an IIIF info.json (300x200, tiles of 256) naming tiles there;
    ``/ck-tiles/…``: tiles. Returns (A base, B base, seen), seen: (host, path, Cookie header) per request."""
    seen: list[tuple[str, str, str | None]] = []

    def info(s, path, h):
        seen.append((h.get("Host", ""), path, h.get("Cookie")))
        tiles = path.split("/ck-info/", 1)[1].replace("~", "/")
        return Response(200, json.dumps({
            "@context": "http://iiif.io/api/image/2/context.json", "@id": tiles,
            "protocol": "http://iiif.io/api/image", "width": 300, "height": 200,
            "tiles": [{"width": 256, "scaleFactors": [1]}],
            "profile": ["http://iiif.io/api/image/2/level0.json", {"formats": ["png"]}]}).encode(),
            "application/json")

    def tile(s, path, h):
        seen.append((h.get("Host", ""), path, h.get("Cookie")))
        m = _REGION.search(path)
        if m is None:
            return Response(404, b"")
        out = io.BytesIO()
        Image.new("RGB", (int(m.group(3)), int(m.group(4))), (20, 130, 30)).save(out, "PNG")
        return Response(200, out.getvalue(), "image/png")

    server.add_route("/ck-info/", info)
    server.add_route("/ck-tiles/", tile)
    return f"http://localhost:{server.port}", f"http://127.0.0.1:{server.port}", seen


def _url(a: str, b: str) -> str:
    return f"{a}/ck-info/{(b + '/ck-tiles/img').replace('/', '~')}"


def _cookies(header: str | None) -> set[str]:
    return set() if header is None else {p.strip() for p in header.split(";")}


def _check(seen, *, meta: set[str], tiles: set[str]) -> None:
    on_a = [c for h, p, c in seen if h.startswith("localhost") and "/ck-info/" in p]
    on_b = [c for h, p, c in seen if h.startswith("127.0.0.1") and "/ck-tiles/" in p]
    assert len(on_a) == 1 and len(on_b) >= 2, seen
    assert _cookies(on_a[0]) == meta
    assert all(_cookies(c) == tiles for c in on_b), on_b


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cookies_txt_goes_where_each_cookie_matches(hosts, tmp_path, transport):
    a, b, seen = hosts
    jar = tmp_path / "cookies.txt"
    jar.write_text(COOKIES_TXT)
    image = dz.open(_url(a, b), dezoomer="iiif", cookies=jar, transport=transport, **FAST_API)
    image.save(tmp_path / "o.png", progress=False)
    _check(seen, meta={"meta=m1"}, tiles={"tile=t1", "deep=d1"})
    # the recipe that goes to dask workers carries the cookies as data, and its repr no value
    net = NetConfig(cookies=CookieSet.of(jar), header_host=a.split("//")[1])
    clone = pickle.loads(pickle.dumps(net))
    assert clone == net and hash(clone) == hash(net)
    assert clone.cookie_header(b + "/ck-tiles/img/x.png", b.split("//")[1]) == "tile=t1; deep=d1"
    assert "t1" not in repr(net)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cookie_dict_goes_to_the_input_site_only(hosts, tmp_path, transport):
    a, b, seen = hosts
    image = dz.open(_url(a, b), dezoomer="iiif", cookies={"sid": "abc"}, transport=transport, **FAST_API)
    image.save(tmp_path / "o.png", progress=False)
    _check(seen, meta={"sid=abc"}, tiles=set())


def test_cli_cookies(hosts, capsys, tmp_path):
    a, b, seen = hosts
    jar = tmp_path / "cookies.txt"
    jar.write_text(COOKIES_TXT.split("\n", 1)[1])  # without the header line, as some exports are
    code, out, err = run_cli(capsys, "--cookies", jar, "--dezoomer", "iiif", _url(a, b), tmp_path / "o.png")
    assert code == 0, err
    _check(seen, meta={"meta=m1"}, tiles={"tile=t1", "deep=d1"})


def test_cli_bad_cookies_file(capsys, tmp_path):
    err = cli_error(capsys, "--cookies", tmp_path / "missing.txt", "http://127.0.0.1:9/x")
    assert "cookies file" in err and "hint: " in err
    bad = tmp_path / "bad.txt"
    bad.write_text("# Netscape HTTP Cookie File\nnot\ta\tcookie\n")
    err = cli_error(capsys, "--cookies", bad, "http://127.0.0.1:9/x")
    assert "invalid cookies file" in err and "Netscape" in err


def test_domain_and_path_rules():
    cookies = CookieSet(load_cookies({}) + (
        (".example.org", True, "/", False, 0.0, "sub", "1"),
        ("example.org", False, "/", False, 0.0, "host", "2"),
        ("images.example.org", False, "/iiif", True, 0.0, "sec", "3"),
    ))
    assert cookie_header(cookies, False, "example.org", "/", True) == "sub=1; host=2"
    assert cookie_header(cookies, False, "images.example.org", "/iiif/x", True) == "sub=1"
    assert cookie_header(cookies, True, "images.example.org", "/iiif/x", True) == "sub=1; sec=3"
    assert cookie_header(cookies, True, "images.example.org", "/iiifx", True) == "sub=1"
    assert cookie_header(cookies, True, "badexample.org", "/", True) is None
    assert cookie_header(cookies, True, "example.org.evil.net", "/", True) is None
