"""Memory sized by the server, through bodies: decoded-size caps (metadata 16 MiB, tiles 32 MiB), a
streaming decode of every Content-Encoding and stacking, and a budget of bytes in flight, on both
transports, against loopback servers that really send the bombs."""

from __future__ import annotations

import json
import random
import time
import tracemalloc

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.net import NetConfig, fetch_sync
from dezoomify_nb.net import codecs as C
from dezoomify_nb.net.config import DEFAULT_HEADERS
from dezoomify_nb.testing.tileserver import Response

from .conftest import FAST_CLI
from .harness import run_isolated
from .rawhttp import MiB, RawServer, chunked, deflate_raw, deflate_zlib, gzip_bomb, gzipped, head, respond

TRANSPORTS = ["aiohttp", "httpx"]
DZI = ('<?xml version="1.0"?><Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="png" '
       'Overlap="0" TileSize="256"><Size Width="{w}" Height="{h}"/></Image>')


@pytest.fixture(scope="module")
def raw():
    server = RawServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def bombs():
    """200 MiB of ``[{},{},…]`` as gzip (~200 KiB), as ``gzip, gzip`` (a few KiB) and as raw deflate."""
    inner = gzip_bomb(200 * MiB, b"{},")
    return {"gzip": inner, "gzip, gzip": gzipped(inner), "deflate": inner[10:-8]}  # raw deflate: no wrapper


# --- the decoders themselves ------------------------------------------------------------------------

def _text(n: int) -> bytes:
    rnd = random.Random(n)
    words = [bytes(rnd.choices(b"abcdefghij<>{}\":, ", k=rnd.randint(1, 9))) for _ in range(500)]
    return b" ".join(rnd.choices(words, k=n // 5))[:n]


def _encoders() -> dict[str, object]:
    enc = {
        "gzip": gzipped, "x-gzip": gzipped, "deflate": deflate_zlib, "identity": lambda d: d,
        "gzip, gzip": lambda d: gzipped(gzipped(d)),
        "deflate, gzip": lambda d: gzipped(deflate_zlib(d)),
        "gzip, identity, deflate": lambda d: deflate_raw(gzipped(d)),
    }
    if "br" in C.ACCEPT_ENCODING:
        import brotli

        # quality 9, not the default 11: the same stream features (context modelling, block splits, the
        # 4 MiB window), without 11's optimal parsing, which takes ~10 s a call on 3 MiB
        enc["br"] = lambda d: brotli.compress(d, quality=9)
        enc["gzip, br"] = lambda d: brotli.compress(gzipped(d), quality=9)
    if "zstd" in C.ACCEPT_ENCODING:
        zstd = C._ZSTD
        enc["zstd"] = lambda d: zstd.compress(d[: len(d) // 2]) + zstd.compress(d[len(d) // 2:])  # two frames
    return enc


def _decode_all(encoding: str, data: bytes, step: int) -> list[bytes]:
    chain = C.stages(encoding)
    if chain is None:
        return [data]
    return [p for i in range(0, len(data), step) for p in C.decode(chain, data[i:i + step])]


@pytest.mark.parametrize("encoding", list(_encoders()))
def test_every_encoding_and_stacking_decodes_in_bounded_pieces(encoding):
    data = _text(3 * MiB)
    sent = _encoders()[encoding](data)
    for step in (len(sent), 65536, 4093):
        pieces = _decode_all(encoding, sent, step)
        assert b"".join(pieces) == data, (encoding, step)
        assert max(map(len, pieces)) <= (len(sent) if C.stages(encoding) is None else 2 * C.PIECE)
    small = _encoders()[encoding](b"hello, world")
    assert b"".join(_decode_all(encoding, small, 1)) == b"hello, world"  # one byte at a time


def test_raw_deflate_gzip_members_and_trailing_bytes():
    data = _text(200_000)
    assert b"".join(_decode_all("deflate", deflate_raw(data), 3)) == data
    two = gzipped(data[:1000]) + gzipped(data[1000:])  # members in a row (RFC 1952)
    for step in (len(two), 7, 1):
        assert b"".join(_decode_all("gzip", two, step)) == data
    assert b"".join(_decode_all("gzip", gzipped(data) + b"\n\0garbage", 5)) == data  # ignored, as browsers do


@pytest.mark.parametrize("encoding", ["gzip", "gzip, gzip", "gzip, gzip, gzip", "deflate", "br", "zstd"])
def test_a_bomb_is_inflated_piece_by_piece(encoding):
    if encoding in ("br", "zstd") and encoding not in C.ACCEPT_ENCODING:
        pytest.skip(f"no {encoding} decoder installed")
    bomb = gzip_bomb(256 * MiB)
    if encoding == "deflate":
        bomb = bomb[10:-8]  # the raw deflate stream inside the gzip member
    elif encoding == "br":
        bomb = __import__("brotli").compress(b"\0" * (64 * MiB), quality=5)
    elif encoding == "zstd":
        bomb = C._ZSTD.compress(b"\0" * (64 * MiB))
    for _ in range(encoding.count(",")):
        bomb = gzipped(bomb)
    tracemalloc.start()
    try:
        got = 0
        for piece in C.decode(C.stages(encoding), bomb):
            got += len(piece)
            if got > 4 * MiB:
                break
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got > 4 * MiB and peak < 8 * MiB + 2 * len(bomb), f"{peak / MiB:.0f} MiB traced"


def test_unknown_corrupt_and_too_deep_encodings():
    with pytest.raises(C.UnsupportedEncoding, match="compress"):
        C.stages("compress")
    with pytest.raises(C.UnsupportedEncoding, match="stacked"):
        C.stages(", ".join(["gzip"] * (C.MAX_LAYERS + 1)))
    with pytest.raises(C.DecodeError):
        list(C.decode(C.stages("gzip"), b"\x1f\x8b\x08\x00garbage-garbage-garbage"))
    assert C.stages(" identity ,") is None and C.stages(None) is None


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_encoding_we_cannot_decode_is_a_clear_final_error(raw, transport):
    url = raw.route(f"/compress-{transport}/", lambda out, path: respond(
        out, 200, b"\x1f\x9d\x90data", [("Content-Encoding", "compress")])) + "info.json"
    with pytest.raises(dz.FetchError) as info:
        fetch_sync(url, NetConfig(transport=transport, retries=2, retry_delay=0.01), metadata=True)
    assert "content encoding 'compress'" in str(info.value) and info.value.attempts == 1
    assert "Accept-Encoding: identity" in info.value.hint
    corrupt = raw.route(f"/corrupt-gzip-{transport}/", lambda out, path: respond(
        out, 200, gzipped(b"x" * 5000)[:-30] + b"\xff" * 30, [("Content-Encoding", "gzip")])) + "info.json"
    with pytest.raises(dz.FetchError) as info:
        fetch_sync(corrupt, NetConfig(transport=transport, retries=1, retry_delay=0.01), metadata=True)
    assert "DecodingError" in str(info.value) and info.value.attempts == 2  # damaged on the way? retried


def test_we_advertise_only_what_we_decode(raw):
    sent = dict(DEFAULT_HEADERS)["Accept-Encoding"]
    assert sent == C.ACCEPT_ENCODING
    for name in (n.strip() for n in sent.split(",")):
        assert C.stages(name)
    url = raw.route("/ae/", lambda out, path: respond(out, 200, b"ok"))
    for transport in TRANSPORTS:
        raw.requests.clear()
        assert fetch_sync(url + transport, NetConfig(transport=transport, retries=0)) == b"ok"
        assert raw.requests[-1][2]["accept-encoding"] == sent


# --- honest compressed servers still work (pixels equal to the source) ------------------------------

_ENCODE = {"gzip": gzipped, "deflate-raw": deflate_raw, "deflate": deflate_zlib, "gzip, gzip": lambda d: gzipped(gzipped(d))}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_compressed_metadata_and_tiles_give_the_source_pixels(server, transport):
    prefix = f"/enc-{transport}"

    def handler(srv, raw_path, headers):
        name = raw_path[len(prefix) + 1:].split("/", 1)[0]
        inner = srv._route(raw_path[len(prefix) + 1 + len(name):])
        encoding = name.replace("_", ", ")
        header = "deflate" if encoding == "deflate-raw" else encoding
        return Response(inner.status, _ENCODE[encoding](inner.body), inner.content_type,
                        {"Content-Encoding": header})

    server.add_route(prefix + "/", handler)
    for name in ("gzip", "deflate-raw", "deflate", "gzip_gzip"):
        img = dz.open(f"{server.base_url}{prefix}/{name}/dzi-png/image.dzi", transport=transport, min_interval=0)
        np.testing.assert_array_equal(img.to_dask().compute(), server.level_image("dzi-png", 0), err_msg=name)


# --- lying and endless bodies -----------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_huge_content_length_is_refused_before_reading(raw, transport):
    def huge(out, path):
        head(out, 200, [("Content-Length", str(10**12))])
        out.write(b"{" * 1000)
        time.sleep(5)  # and then nothing: a client reading the body would wait for its timeout

    url = raw.route(f"/huge-{transport}/", huge) + "info.json"
    start = time.monotonic()
    for metadata, cap, option in ((True, "16MiB", "--max-metadata-size"), (False, "32MiB", "--max-tile-size")):
        with pytest.raises(dz.FetchError) as info:
            fetch_sync(url, NetConfig(transport=transport, retries=0, timeout=4), metadata=metadata)
        assert f"size cap of {cap}" in str(info.value) and option in info.value.hint
    assert time.monotonic() - start < 2


# --- bombs, in a watched subprocess: refused at the cap, memory stays low ---------------------------

_OPEN_ALL = """
import json, time, dezoomify_nb as dz
out = []
for url in {urls!r}:
    start = time.monotonic()
    try:
        dz.open(url, transport={transport!r}, retries=0, min_interval=0, timeout=20)
        out.append(["ok", 0])
    except dz.DezoomifyError as e:
        out.append([str(e) + " | " + e.hint, time.monotonic() - start])
print(json.dumps(out))
"""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_metadata_bombs_and_endless_bodies_stop_at_the_metadata_cap(raw, bombs, transport):
    def bomb(out, path):
        encoding = path.rsplit("/", 2)[-2].replace("_", ", ")
        respond(out, 200, bombs[encoding], [("Content-Type", "application/json"), ("Content-Encoding", encoding)])

    def endless_chunked(out, path):
        chunked(out, iter(lambda: b"[{}," * 16384, None), [("Content-Type", "application/json")])

    def endless_until_close(out, path):  # no Content-Length, no chunks: the body ends when the server hangs up
        head(out, 200, [("Content-Type", "application/json")])
        for _ in range(2000):
            out.write(b"<a/>" * 16384)

    def redirect_with_a_bomb(out, path):  # a redirect's body is never read (httpx would read it whole)
        target = path.replace("/redirect-", "/target-")
        respond(out, 302, gzip_bomb(1024 * MiB), [("Location", target), ("Content-Encoding", "gzip")])

    base = raw.route(f"/bomb-{transport}/", bomb)
    urls = [f"{base}{enc}/info.json" for enc in ("gzip", "gzip_gzip", "deflate")]
    urls.append(raw.route(f"/endless-{transport}/", endless_chunked) + "info.json")
    urls.append(raw.route(f"/until-close-{transport}/", endless_until_close) + "image.dzi")
    raw.route(f"/target-{transport}/", lambda out, path: respond(out, 200, DZI.format(w=300, h=200).encode()))
    redirect = raw.route(f"/redirect-{transport}/", redirect_with_a_bomb) + "image.dzi"
    run = run_isolated(code=_OPEN_ALL.format(urls=[*urls, redirect], transport=transport), rss_mb=400, seconds=60)
    run.assert_contained(rss_mb=400)
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert results.pop() == ["ok", 0]  # the redirect was followed, its bomb never inflated
    for url, (message, seconds) in zip(urls, results, strict=True):
        assert "larger than the metadata size cap of 16MiB" in message, (url, message)
        assert "--max-metadata-size" in message and "max_metadata_bytes" in message
        assert seconds < 10, (url, seconds)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_metadata_bomb_through_the_cli(raw, bombs, transport, tmp_path):
    url = raw.route(f"/cli-bomb-{transport}/", lambda out, path: respond(
        out, 200, bombs["gzip, gzip"], [("Content-Type", "application/xml"), ("Content-Encoding", "gzip, gzip")]))
    run = run_isolated([*FAST_CLI, "--transport", transport, url + "image.dzi", str(tmp_path / "o.png")],
                       rss_mb=400, seconds=60)
    run.assert_contained(rss_mb=400)
    error = run.one_error_line()
    assert "larger than the metadata size cap of 16MiB" in error
    assert "--max-metadata-size 64MiB" in run.stderr
    assert run.returncode != 0
    # the cap is an option (here lowered below an honest document)
    run = run_isolated([*FAST_CLI, "--transport", transport, "--max-metadata-size", "8k",
                        raw.route(f"/small-{transport}/", lambda out, path: respond(
                            out, 200, gzipped(DZI.format(w=100, h=100).encode() + b" " * 9000),
                            [("Content-Encoding", "gzip")])) + "image.dzi", str(tmp_path / "p.png")],
                       rss_mb=400, seconds=60)
    assert "larger than the metadata size cap of 8KiB" in run.one_error_line()


def _tile_bomb_server(raw: RawServer, prefix: str, bomb: bytes, trickle: bool = False) -> str:
    """A Deep Zoom image of 1024 x 1024 px whose tiles are all ``bomb``; ``trickle``: sent 2 KiB at a time,
    10 ms apart, so that every request inflates a little at a time and all of them hold bytes at once."""
    dzi = DZI.format(w=1024, h=1024).encode()

    def handler(out, path):
        if path.endswith(".dzi"):
            respond(out, 200, dzi, [("Content-Type", "application/xml")])
        elif not trickle:
            respond(out, 200, bomb, [("Content-Type", "image/png"), ("Content-Encoding", "gzip")])
        else:
            head(out, 200, [("Content-Type", "image/png"), ("Content-Encoding", "gzip"),
                            ("Content-Length", str(len(bomb)))])
            for i in range(0, len(bomb), 2048):
                out.write(bomb[i:i + 2048])
                out.flush()
                time.sleep(0.01)

    return raw.route(prefix, handler) + "image.dzi"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sixteen_tile_bombs_at_once_stay_within_the_budget(raw, transport, tmp_path):
    """A level of 16 tiles (4 x 4), each a gzip bomb of 255 MiB, fetched 16 at a time: every tile stops at
    the tile cap, and the bytes in flight stay within the budget (+ one cap): no 16 x 255 MiB, nor
    16 x 32 MiB."""
    url = _tile_bomb_server(raw, f"/tile-bombs-{transport}/", gzip_bomb(255 * MiB))
    run = run_isolated([*FAST_CLI, "--transport", transport, "-n", "16", "--largest", url,
                        str(tmp_path / "o.png")], rss_mb=500, seconds=90)
    run.assert_contained(rss_mb=500)
    error = run.one_error_line()
    assert "Could not get any tile" in error and "larger than the tile size cap of 32MiB" in error
    assert "--max-tile-size" in run.stderr
    tiles = {p for _, p, _ in raw.requests if p.startswith(f"/tile-bombs-{transport}/image_files/10/")}
    assert len(tiles) == 16
    assert not (tmp_path / "o.png").exists()
    print(f"{transport}: peak RSS {run.peak_rss_mb:.0f} MB in {run.elapsed:.1f} s")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_budget_holds_with_a_small_setting(raw, transport, tmp_path, inflight="48MiB"):
    """Tiles capped at 64 MiB, 16 bombs trickled at once: without the budget of bytes in flight they would
    hold 16 x 64 MiB together; with --max-inflight-size 48MiB, at most 48 + 64 MiB."""
    url = _tile_bomb_server(raw, f"/tile-bombs-budget-{transport}-{inflight}/", gzip_bomb(100 * MiB), trickle=True)
    run = run_isolated([*FAST_CLI, "--transport", transport, "-n", "16", "--largest", "--max-tile-size", "64MiB",
                        "--max-inflight-size", inflight, url, str(tmp_path / "o.png")], rss_mb=400, seconds=90)
    print(f"{transport}: peak RSS {run.peak_rss_mb:.0f} MB in {run.elapsed:.1f} s")
    run.assert_contained(rss_mb=400)
    assert "larger than the tile size cap of 64MiB" in run.one_error_line()


def test_sizes_parse_and_print():
    from dezoomify_nb.net.config import format_size, parse_size

    assert parse_size("16MiB") == parse_size("16M") == parse_size("16 mb") == 16 * MiB
    assert parse_size("512k") == 512 * 1024 and parse_size("1G") == 1 << 30 and parse_size("100") == 100
    for bad in ("", "-1", "0", "12 parsecs", "1e9", "MiB"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert format_size(16 * MiB) == "16MiB" and format_size(1536) == "1.5KiB" and format_size(10) == "10B"

