"""Encrypted krpano XML: the primitives on the specification's vectors and on real excerpts, round trips
through an encoder written here (the inverse of the specified algorithm), refusals naming the variant, and
end to end: an encrypted tour on the loopback server whose tiles are the server's own."""

from __future__ import annotations

import random
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers import krpano_crypt as kc
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.krpano import KrpanoDezoomer
from dezoomify_nb.errors import MetadataError

from .fmt_helpers import DATA, FAST, Driver, assert_jpeg_close, load, not_found

K = KrpanoDezoomer()
SITE = "https://tours.example.org/t/"


# --- the inverse of the specified algorithm ------------------------------------------------------------
def _lz4_length(n: int) -> bytes:
    out = bytearray()
    n -= 15
    while n >= 255:
        out.append(255)
        n -= 255
    out.append(n)
    return bytes(out)


def lz4_compress(data: bytes) -> bytes:
    """A greedy LZ4 block compressor (overlapping matches included); the last 5 bytes stay literals."""
    out = bytearray()
    anchor = pos = 0
    table: dict[bytes, int] = {}
    limit = len(data) - 5
    while pos + 4 <= limit:
        key = data[pos : pos + 4]
        cand = table.get(key)
        table[key] = pos
        if cand is None or pos - cand > 65535:
            pos += 1
            continue
        length = 4
        while pos + length < limit and data[cand + length] == data[pos + length]:
            length += 1
        lit = pos - anchor
        out.append((min(lit, 15) << 4) | min(length - 4, 15))
        if lit >= 15:
            out += _lz4_length(lit)
        out += data[anchor:pos]
        out += (pos - cand).to_bytes(2, "little")
        if length - 4 >= 15:
            out += _lz4_length(length - 4)
        pos += length
        anchor = pos
    lit = len(data) - anchor
    out.append(min(lit, 15) << 4)
    if lit >= 15:
        out += _lz4_length(lit)
    out += data[anchor:]
    return bytes(out)


def encode_base85(data: bytes) -> str:
    assert len(data) % 4 == 0
    chars = []
    for k in range(0, len(data), 4):
        value = int.from_bytes(data[k : k + 4], "big")
        digits = []
        for _ in range(5):
            value, d = divmod(value, 85)
            digits.append(d)
        chars += [chr(d + 35 if d < 57 else d + 36) for d in reversed(digits)]
    return "".join(chars)


def encode_base64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def encrypt(plain: bytes, header: str = "KENCPUZR", key: bytes = kc.DEFAULT_KEY, seed: int = 0) -> str:
    """The ``KENC…`` payload krpano would write for ``plain`` (any salt gives a valid document)."""
    rng = random.Random(seed)
    salt = bytes(rng.randrange(256) for _ in range(128))
    pad = bytes(rng.randrange(256) for _ in range(salt[65] & 7))
    widened = (ord(header[4]) - 80) >> 1 == 1
    if header[6] == "Z":
        block = lz4_compress(plain)
        inner = len(plain).to_bytes(3, "little") + b"\0" + len(block).to_bytes(3, "little") + b"\0" + block
    else:
        inner = plain
    raw = salt + pad + kc.byte_cipher(salt + pad + inner, key, widened=widened)
    if header[6] == "Z":
        raw += bytes(-len(raw) % 4)  # whole Base85 words; the LZ4 header says where the block ends
        return header + encode_base85(raw)
    return header + encode_base64(raw)


def wrap(payload: str, *, pieces: int = 1) -> bytes:
    step = -(-len(payload) // pieces)
    cdata = "".join(f"<![CDATA[{payload[k:k + step]}]]>" for k in range(0, len(payload), step))
    return f'<?xml version="1.0"?>\n<encrypted>{cdata}</encrypted>\n'.encode()


TOUR = """<krpano version="1.19"><source_details subject="Hidden tour"/>
<image tilesize="256" baseindex="0"><level tiledimagewidth="1000" tiledimageheight="700">
<flat url="tiles/tile_%x_%y.png"/></level></image></krpano>"""


# --- the specification's vectors and real excerpts ----------------------------------------------------
def test_base85_vector_and_byte_orders() -> None:
    assert kc.decode_base85("7vgt.") == b"ABCD"
    assert kc.decode_base85("7vgt.", little_endian=True) == b"DCBA"
    assert kc.decode_base85("7vgt.7v") == b"ABCD"  # a trailing partial group is ignored
    assert kc.decode_base85(encode_base85(bytes(range(256)))) == bytes(range(256))
    for bad in ("7vgt ", "7vgtz", "7vg\x7ft"):
        with pytest.raises(MetadataError, match="Base85"):
            kc.decode_base85(bad)


def test_lz4_blocks() -> None:
    assert kc.lz4_block(bytes([0x30]) + b"abc", 3) == b"abc"
    assert kc.lz4_block(bytes([0x32]) + b"abc" + bytes([3, 0]), 9) == b"abcabcabc"  # overlapping match
    assert kc.lz4_block(bytes([0x1F]) + b"a" + bytes([1, 0, 10]), 30) == b"a" * 30  # extended match length
    text = (TOUR * 20).encode()
    assert kc.lz4_block(lz4_compress(text), len(text)) == text
    for block, size in ((bytes([0x32]) + b"abc" + bytes([9, 0]), 9), (bytes([0x30]) + b"abc", 4),
                        (bytes([0x50]) + b"abc", 5), (bytes([0xF0]), 20)):
        with pytest.raises(MetadataError, match="LZ4"):
            kc.lz4_block(block, size)
    with pytest.raises(MetadataError, match="shorter than its LZ4 header"):
        kc.unpack_lz4(b"\xff\xff\xff\x00\x05\x00\x00\x00" + bytes(4))


@pytest.mark.parametrize(("raw", "branch", "solvable"), [
    ("KENCPUZR", "Z", True), ("KENCRUZR", "Z", False), ("KENCPUBR", "B", True), ("KENCRUBR", "B", False),
    ("KENCPUPR", "PP", False), ("KENCRURR", "RR", False), ("KENCXXXZ", "unknown", False),
])
def test_header_classification(raw: str, branch: str, solvable: bool) -> None:
    header = kc.parse_header(raw + "body")
    assert (header.branch, header.solvable) == (branch, solvable)
    assert header.describe().startswith(raw)


def test_real_modern_z_excerpt_gives_the_specified_lz4_header() -> None:
    """dezoomify-rs fixture 2018-04-04: 9915 characters → 7932 bytes → 7803 → 36407 (spec §B.4)."""
    payload = (DATA / "krpano_encrypted" / "2018-04-04-KENCPUZR-excerpt.txt").read_text()
    header = kc.parse_header(payload)
    assert header.raw == "KENCPUZR" and header.solvable
    raw = kc.decode_base85(payload[8:])
    assert raw[65] & 7 == 1  # so 7932 decoded bytes decrypt to 7932 - 129 = 7803
    plain = kc.byte_cipher(raw, kc.DEFAULT_KEY)
    assert int.from_bytes(plain[0:3], "little") == 36407
    assert 8 + int.from_bytes(plain[4:7], "little") == 7803
    assert plain[8:29] == b"\x1f \x01\x00!\xff\x01\r\n<krpano>\r\n\r\n"  # token 0x1F, 1 literal, match…
    assert b'<action name="videointerface_mobile_stagescale" autorun="preinit" devices="' in plain


def test_real_old_b_excerpt_decrypts_to_readable_xml() -> None:
    payload = (DATA / "krpano_encrypted" / "2013-06-05-KENCPUBR-excerpt.txt").read_text()
    assert kc.parse_header(payload).branch == "B"
    plain = kc.byte_cipher(kc.decode_base64(payload[8:]), kc.DEFAULT_KEY)
    assert plain.startswith(b'<krpano version="1.0.8.14" onstart="startup();">')
    assert b'<include url="skin/androidskin.xml" devices="android+flash" />' in plain
    # every byte is text: the keystream is right all along (output before the swap, 256 bytes dropped)
    assert all(32 <= c < 127 or c in b"\r\n\t" for c in plain), plain


# --- round trips and refusals --------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["KENCPUZR", "KENCPUBR"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip(header: str, seed: int) -> None:
    plain = ("\ufeff  " + TOUR + "<!-- é ü 中 -->" + "".join(random.Random(seed).choices(string.printable, k=3000))
             ).encode()
    payload = encrypt(plain, header, seed=seed)
    for doc in (wrap(payload), wrap(payload, pieces=3), b"\xef\xbb\xbf" + payload.encode(),
                f"<encrypted>\n  {payload[:50]}\n  {payload[50:]}\n</encrypted>".encode()):
        assert kc.is_encrypted(doc)
        assert kc.decrypt_xml(doc) == plain
    assert kc.maybe_decrypt(TOUR.encode()) == TOUR.encode()
    assert not kc.is_encrypted(b"<encrypted>not krpano</encrypted>")


@pytest.mark.parametrize(("header", "words"), [
    ("KENCPUPR", "P/P"), ("KENCRURR", "R/R"), ("KENCRUZR", "licence"), ("KENCRUBR", "licence"), ("KENCQUQR", "unknown"),
])
def test_unsolved_variants_are_named_never_garbage(header: str, words: str) -> None:
    # encrypted with a key we do not have: the refusal names the variant
    payload = encrypt(TOUR.encode(), header if header[6] in "ZB" else "KENCPUZR", key=b"a licensed key!!")
    doc = wrap(header + payload[8:])
    with pytest.raises(MetadataError, match=header) as info:
        kc.decrypt_xml(doc)
    assert words in str(info.value) and "KENCPUZR" in info.value.hint
    with pytest.raises(MetadataError, match=header):
        K.images(Context(SITE + "tour.xml", {SITE + "tour.xml": doc}))


@pytest.mark.parametrize("header", ["KENCPUZR", "KENCPUBR"])
def test_wrong_key_or_damage_is_an_error(header: str) -> None:
    payload = encrypt(TOUR.encode() * 3, header, key=b"another key 1234")
    with pytest.raises(MetadataError, match=header):
        kc.decrypt_xml(wrap(payload))
    good = encrypt(TOUR.encode() * 3, header)
    for broken in (good[:60], good[:8], good[:300] + "~" + good[301:], "KENC"):
        with pytest.raises(MetadataError, match="encrypted|Base|LZ4|KENC"):
            kc.decrypt_xml(wrap(broken))


@settings(max_examples=200, deadline=None)
@given(header=st.sampled_from(["KENCPUZR", "KENCPUBR", "KENCRUZR", "KENCRUBR", "KENCPUPR", "KENCRURR", "KENC"]),
       body=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=900),
       flips=st.lists(st.integers(0, 5000), max_size=4))
def test_arbitrary_payloads_only_raise_metadata_errors(header: str, body: str, flips: list[int]) -> None:
    good = list(encrypt((TOUR * 4).encode(), "KENCPUZR" if header[-2:-1] != "B" else "KENCPUBR")[8:])
    for at in flips:  # damage a real body, or use arbitrary text
        good[at % len(good)] = "#"
    for text in (body, "".join(good)):
        try:
            out = kc.decrypt_xml(wrap(header + text))
        except MetadataError:
            continue
        assert b"<krpano" in out  # never garbage


def test_krpano_dezoomer_decrypts_input_embedded_and_included_xml() -> None:
    inner = """<krpano><include url="more/part.xml"/></krpano>"""
    part = """<krpano><image tilesize="512"><level tiledimagewidth="2000" tiledimageheight="1000">
              <flat url="t/%x_%y.jpg"/></level></image></krpano>"""
    files = {
        SITE + "index.html": b'<script>embedpano({xml:"tour.xml"});</script>',
        SITE + "tour.xml": wrap(encrypt(inner.encode(), "KENCPUZR")),
        SITE + "more/part.xml": wrap(encrypt(part.encode(), "KENCPUBR", seed=5)),
    }
    (img,) = Driver(lambda u: files.get(u) or not_found(u)).run(K, SITE + "index.html")
    assert img.levels[0].size == (2000, 1000)
    assert img.levels[0].tile_url(3, 1) == SITE + "more/t/4_2.jpg"  # relative to the included file


def test_an_unsolved_include_is_skipped_with_its_reason() -> None:
    files = {
        SITE + "tour.xml": TOUR.replace("<image", '<include url="x.xml"/><image').encode(),
        SITE + "x.xml": wrap("KENCRURR" + encrypt(b"<krpano/>")[8:]),
    }
    (img,) = Driver(lambda u: files.get(u) or not_found(u)).run(K, SITE + "tour.xml")
    assert img.title == "Hidden tour"


# --- end to end on the loopback server --------------------------------------------------------------
@pytest.fixture(scope="module")
def tours(_server):
    sizes = _server.level_sizes("dzi-jpg")
    multires = ",".join(["256"] + [f"{w}x{h}" for w, h in reversed(sizes)])
    dzi = f"""<krpano><data>{{"title": "Deep tour"}}</data><image baseindex="0">
              <flat url="../dzi-jpg/image_files/%l/%x_%y.jpg" multires="{multires}"/></image></krpano>"""
    generic = TOUR.replace("tiles/tile_%x_%y.png", "../generic/tile_%x_%y.png")
    base = _server.serve_files("/kenc/", {
        "z.xml": wrap(encrypt(generic.encode(), "KENCPUZR", seed=7), pieces=4),
        "b.xml": wrap(encrypt(dzi.encode(), "KENCPUBR", seed=8)),
        "rr.xml": wrap("KENCRURR" + encrypt(generic.encode())[8:]),
    })
    return base


def test_e2e_modern_z_tour_auto_detected_pixels_exact(server, tours) -> None:
    img = dz.open(tours + "/z.xml", **FAST)
    assert img.dezoomer == "krpano" and img.title == "Hidden tour"
    np.testing.assert_array_equal(img.to_dask().compute(), server.level_image("generic", 0))
    assert server.count("/generic/tile_") == 12


def test_e2e_old_b_tour_every_level(server, tours, tmp_path) -> None:
    code = main(["-i", "0ms", "--dezoomer", "krpano", "--zoom-level", "1", tours + "/b.xml", str(tmp_path / "b.png")])
    assert code == 0
    assert_jpeg_close(load(tmp_path / "b.png"), server.level_image("dzi-jpg", 1))
    img = dz.open(tours + "/b.xml", **FAST)
    assert img.title == "Deep tour"
    assert [lv.size for lv in img.levels] == server.level_sizes("dzi-jpg")


def test_e2e_unsolved_variant_is_a_clear_cli_error(server, tours, capsys, tmp_path) -> None:
    code = main(["-i", "0ms", "--dezoomer", "krpano", tours + "/rr.xml", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert code == 1 and "KENCRURR" in err and "R/R" in err and "hint:" in err
    assert not (tmp_path / "x.png").exists() and server.count("/generic/") == 0


# --- the real site (run with: pytest -m network tests/formats/test_krpano_encrypted.py) ------------------
#: dezoomify #859/#882, dezoomify-rs #305: Hirox's 108-gigapixel "Girl with a Pearl Earring"; a user found
#: its encrypted XMLs under code/ (which KENC variant it uses is not public: spec §B.5)
HIROX = "https://www.hirox-europe.com/gigapixel/girl-with-a-pearl-earring/code/structure.xml"


@pytest.mark.network
def test_real_hirox_tour_decrypts_or_names_its_variant() -> None:
    try:
        images = dz.open_all(HIROX, dezoomer="krpano", retries=2, timeout=60)
    except MetadataError as exc:
        assert "KENC" in str(exc), exc  # refused, naming the variant: never garbage
        return
    assert images and all(im.levels[0].width >= 1000 for im in images)
