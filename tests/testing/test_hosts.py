"""route_hosts: mapped hosts go to the loopback server, any other host is refused, through both transports."""

from __future__ import annotations

import pytest

from dezoomify_nb.errors import FetchError
from dezoomify_nb.net import NetConfig, fetch_sync
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.tileserver import Response

TRANSPORTS = ["aiohttp", "httpx"]


def config(transport: str, **kw) -> NetConfig:
    return NetConfig(min_interval=0, retry_delay=0.01, transport=transport, **kw)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_mapped_hosts_go_to_their_prefix(server, transport):
    direct = fetch_sync(server.base_url + "/generic/tile_1_0.png?v=1", config(transport))
    with route_hosts(server, {"tiles.example.org": "/generic"}):
        routed = fetch_sync("https://tiles.example.org/tile_1_0.png?v=1", config(transport))
    assert routed == direct
    assert server.requests[-1] == "/generic/tile_1_0.png?v=1"
    assert server.headers_seen[-1]["Host"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unmapped_hosts_are_refused_like_a_refused_connection(server, waits, transport):
    with route_hosts(server, {"tiles.example.org": "/generic"}):
        with pytest.raises(FetchError) as info:
            fetch_sync("https://example.org/tile_0_0.png", config(transport, retries=1))
    message = str(info.value)
    assert message.startswith("could not connect to example.org:443: ")
    assert message.endswith("(https://example.org/tile_0_0.png)")
    assert "route_hosts: example.org is not mapped to the loopback server" in message
    assert info.value.status is None and info.value.hint.startswith("Check the host name")
    assert info.value.attempts == 2 and len(waits) == 1  # retried, as any connection error


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_redirects_are_routed_and_refused_too(server, transport):
    """Every hop goes through the rule, not only the first request."""
    server.add_route("/to-mapped/", lambda s, path, h: Response(
        302, b"", headers={"Location": "https://tiles.example.org/tile_0_1.png"}))
    server.add_route("/to-unmapped/", lambda s, path, h: Response(
        302, b"", headers={"Location": "https://elsewhere.example.net/x.png"}))
    direct = fetch_sync(server.base_url + "/generic/tile_0_1.png", config(transport))
    with route_hosts(server, {"tiles.example.org": "/generic"}):
        assert fetch_sync(server.base_url + "/to-mapped/x", config(transport, retries=0)) == direct
        with pytest.raises(FetchError, match="elsewhere.example.net is not mapped"):
            fetch_sync(server.base_url + "/to-unmapped/x", config(transport, retries=0))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_after_the_block_the_usual_clients_are_back(server, transport):
    with route_hosts(server, {"tiles.invalid": "/generic"}):  # .invalid never resolves (RFC 2606)
        assert fetch_sync("https://tiles.invalid/tile_0_0.png", config(transport)).startswith(b"\x89PNG")
    with pytest.raises(FetchError, match="could not connect to tiles.invalid:443: the host name") as info:
        fetch_sync("https://tiles.invalid/tile_0_0.png", config(transport, retries=0))
    assert "route_hosts" not in str(info.value)  # a real DNS failure: no longer rewritten
    assert fetch_sync(server.base_url + "/generic/tile_0_0.png", config(transport)).startswith(b"\x89PNG")
