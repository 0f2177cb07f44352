"""Issue 14, class 8: the user's ``-H`` headers (cookies, tokens) go only to the input URL's site.

Host A is ``localhost``, host B is ``127.0.0.1`` (the same loopback server, told apart by the ``Host`` it is
asked for; an IP address or ``localhost`` is only ever the same site as itself). A's metadata names tiles on B, directly or
through a redirect: B must never see the secrets unless ``header_all_hosts``, while A always does; the
non-secret headers (Referer, User-Agent) go everywhere. Same-site hosts under fake names go through
:func:`~dezoomify_nb.testing.hosts.route_hosts`.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.net.config import NetConfig, same_site, site_of
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.tileserver import Response

from .conftest import FAST_API, run_cli

TRANSPORTS = ["aiohttp", "httpx"]
A, B = "localhost", "127.0.0.1"  # (an IIIF @id on localhost is taken for a placeholder: tiles go to B)
SECRETS = {"Cookie": "session=s3cret", "Authorization": "Bearer t0ken", "X-Api-Key": "k3y"}
PUBLIC = {"Referer": "https://viewer.example.org/page"}
_REGION = re.compile(r"/(\d+),(\d+),(\d+),(\d+)/(\d+),/0/default\.\w+$")


def _png(w: int, h: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _info(tiles: str) -> bytes:
    """An IIIF info.json (one level, 300x200, tiles of 256) whose tiles are at ``tiles``."""
    return json.dumps({
        "@context": "http://iiif.io/api/image/2/context.json", "@id": tiles, "protocol": "http://iiif.io/api/image",
        "width": 300, "height": 200, "tiles": [{"width": 256, "scaleFactors": [1]}],
        "profile": ["http://iiif.io/api/image/2/level0.json", {"formats": ["png"]}],
        "preferredFormats": ["png"],  # taken as it is: no probe tile (this test counts the tile requests)
    }).encode()


@pytest.fixture
def sites(server):
    """Routes: ``/hs-info/<url, / as ~>`` an info.json naming tiles at that URL, ``/hs-tiles/…`` tiles,
    ``/hs-to/<url, / as !>/img/<tile>`` a 302 to ``<url>/img/<tile>`` (and ``/hs-to/<url>/img`` an info.json
    whose tiles are under itself). Returns ``(A, B)`` base URLs."""
    port = server.port

    def info(s, path, h):
        return Response(200, _info(path.split("/hs-info/", 1)[1].replace("~", "/")), "application/json")

    def tile(s, path, h):
        m = _REGION.search(path)
        if m is None:
            return Response(404, b"")
        return Response(200, _png(int(m.group(3)), int(m.group(4))), "image/png")

    def redirect(s, path, h):
        if _REGION.search(path) is None:  # a placeholder @id: the tiles are under the info.json's URL
            return Response(200, _info("http://localhost/"), "application/json")
        target, _, rest = path.split("/hs-to/", 1)[1].partition("/img")
        return Response(302, b"", headers={"Location": target.replace("!", "/") + "/img" + rest})

    server.add_route("/hs-info/", info)
    server.add_route("/hs-tiles/", tile)
    server.add_route("/hs-to/", redirect)
    return f"http://{A}:{port}", f"http://{B}:{port}"


def _enc(url: str) -> str:
    """``url`` as a path segment of ``/hs-info/``."""
    return url.replace("/", "~")


def _via(base: str, target: str) -> str:
    """``base/hs-to/…/img``: tiles there redirect to ``target/img/…``."""
    return f"{base}/hs-to/{target.replace('/', '!')}/img"


def _seen(server, host_prefix: str, path_part: str) -> list:
    return [h for p, h in zip(server.requests, server.headers_seen, strict=True)
            if path_part in p and h.get("Host", "").startswith(host_prefix)]


def _assert_has(headers, wanted: dict[str, str]) -> None:
    for name, value in wanted.items():
        assert headers.get(name) == value, (name, dict(headers))


def _assert_lacks(headers, names) -> None:
    for name in names:
        assert name not in headers, (name, dict(headers))


def _download(url: str, tmp_path, transport: str, **kw) -> None:
    image = dz.open(url, dezoomer="iiif", headers={**SECRETS, **PUBLIC}, transport=transport, **FAST_API, **kw)
    image.save(tmp_path / f"out-{transport}.png", progress=False, overwrite=True)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_secrets_stay_on_the_input_host(server, sites, tmp_path, transport):
    a, b = sites
    _download(f"{a}/hs-info/{_enc(b + '/hs-tiles/img')}", tmp_path, transport)
    on_a, on_b = _seen(server, A, "/hs-info/"), _seen(server, B, "/hs-tiles/")
    assert len(on_a) == 1 and len(on_b) == 2
    _assert_has(on_a[0], {**SECRETS, **PUBLIC})
    for headers in on_b:
        _assert_lacks(headers, SECRETS)
        _assert_has(headers, PUBLIC)
        assert headers.get("User-Agent", "").startswith("Mozilla/5.0")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_header_all_hosts_sends_them_everywhere(server, sites, tmp_path, transport):
    a, b = sites
    _download(f"{a}/hs-info/{_enc(b + '/hs-tiles/img')}", tmp_path, transport, header_all_hosts=True)
    on_b = _seen(server, B, "/hs-tiles/")
    assert len(on_b) == 2
    for headers in on_b:
        _assert_has(headers, {**SECRETS, **PUBLIC})


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_redirects_follow_the_same_rule(server, sites, tmp_path, transport):
    """A tile on A that redirects to B: B sees no secret; a redirect from A to A keeps them all (httpx alone
    would drop the Cookie on any redirect, aiohttp keep an X-Api-Key across hosts)."""
    a, b = sites
    _download(_via(a, b + "/hs-tiles"), tmp_path, transport)
    hops = _seen(server, A, "/hs-to/")
    on_b = _seen(server, B, "/hs-tiles/")
    assert len(hops) == 3 and len(on_b) == 2  # the info.json and two tiles on A, the tiles on B
    for headers in hops:
        _assert_has(headers, SECRETS)
    for headers in on_b:
        _assert_lacks(headers, SECRETS)
        _assert_has(headers, PUBLIC)
    server.reset_requests()
    _download(_via(a, a + "/hs-tiles"), tmp_path, transport)
    landed = _seen(server, A, "/hs-tiles/")
    assert len(landed) == 2
    for headers in landed:
        _assert_has(headers, {**SECRETS, **PUBLIC})


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_same_site_hosts_get_them_other_sites_do_not(server, sites, tmp_path, transport):
    """images.example.co.uk → tiles.example.co.uk (same site) → a redirect to cdn.example.net (not)."""
    hosts = {"images.example.co.uk": "/hs-info", "tiles.example.co.uk": "/hs-to", "cdn.example.net": "/hs-tiles"}
    tiles = "https://tiles.example.co.uk/" + "https://cdn.example.net".replace("/", "!") + "/img"
    with route_hosts(server, hosts):
        _download(f"https://images.example.co.uk/{_enc(tiles)}", tmp_path, transport)
    info, hops, cdn = (_seen(server, "", p) for p in ("/hs-info/", "/hs-to/", "/hs-tiles/"))
    assert len(info) == 1 and len(hops) == 2 and len(cdn) == 2
    for headers in info + hops:
        _assert_has(headers, SECRETS)
    for headers in cdn:
        _assert_lacks(headers, SECRETS)
        _assert_has(headers, PUBLIC)


def test_cli_scopes_headers_unless_header_all_hosts(server, sites, tmp_path, capsys):
    a, b = sites
    url = f"{a}/hs-info/{_enc(b + '/hs-tiles/img')}"
    args = ["-d", "iiif", "-H", "Cookie: session=s3cret", "-H", "Authorization: Bearer t0ken"]
    for flag, expect in (([], False), (["--header-all-hosts"], True)):
        server.reset_requests()
        code, _, err = run_cli(capsys, *args, *flag, "--overwrite", url, tmp_path / "cli.png")
        assert code == 0, err
        on_a, on_b = _seen(server, A, "/hs-info/"), _seen(server, B, "/hs-tiles/")
        assert on_a[0].get("Cookie") == "session=s3cret" and len(on_b) == 2
        assert all(("Cookie" in h and "Authorization" in h) is expect for h in on_b), on_b


@pytest.mark.parametrize(("a", "b", "same"), [
    ("example.org", "example.org:8080", True),
    ("images.example.org", "tiles.example.org", True),
    ("a.b.example.org", "example.org", True),
    ("example.org", "example.com", False),
    ("example.org", "evil-example.org", False),
    ("www.bnf.fr", "gallica.bnf.fr", True),  # a short name is not a public suffix
    ("images.example.co.uk", "tiles.example.co.uk", True),
    ("example.co.uk", "other.co.uk", False),  # co.uk is a public suffix
    ("x.ac.jp", "y.ac.jp", False),
    ("victim.github.io", "attacker.github.io", False),  # shared hosting: every sub-domain its own site
    ("127.0.0.1:8000", "127.0.0.1:9000", True),  # same host (ports are not part of a site)
    ("127.0.0.1", "127.0.0.2", False),
    ("localhost", "127.0.0.1", False),
    ("a.localhost", "b.localhost", False),
    ("[::1]:80", "[::1]:81", True),
    ("[::1]", "[::2]", False),
    ("intranet", "other", False),
    ("user:pw@Example.ORG.", "tiles.example.org", True),
])
def test_same_site_rule(a, b, same):
    assert same_site(a, b) is same and same_site(b, a) is same


def test_site_of_and_the_cheap_per_host_lookup():
    assert site_of("a.b.example.com.au") == "example.com.au"
    assert site_of("example.org") == "example.org"
    assert site_of("10.0.0.1") is None and site_of("localhost") is None and site_of("co.uk") is None
    config = NetConfig(headers=(("Cookie", "c"), ("User-Agent", "me")), header_host="images.example.org")
    assert config.request_headers((), "tiles.example.org:443")["Cookie"] == "c"
    elsewhere = config.request_headers((("Cookie", "level"),), "cdn.example.net")
    assert elsewhere["Cookie"] == "level" and elsewhere["User-Agent"] == "me"  # level header, public header kept
    assert "Cookie" not in config.request_headers((), "cdn.example.net")
