"""Encrypted krpano XML (``<encrypted><![CDATA[KENC…]]></encrypted>``): the variants public material solves.

krpano's ``krpanotools encrypt`` replaces a tour's XML by an ``<encrypted>`` element whose text (possibly
split over several CDATA sections) is ``KENC`` + 4 header characters + a body. The header's 7th character
(``Z``, ``B``, ``P``, ``R``) selects the pipeline and its 5th (``P`` or ``R``) the key family:

========== ============================== ================================================== =========
header     variant                        pipeline                                           here
========== ============================== ================================================== =========
KENCPUZR   modern Z (krpano 1.19, 2018+)  Base85* → byte cipher (default key) → LZ4 block     decrypted
KENCPUBR   old B (2012–2013)              Base64 → byte cipher (default key)                 decrypted
KENCRUZR   old Z (≤ 2017)                 as Z, key derived from the viewer's licence         refused
KENCRUBR   old B, licence key             as B, key derived from the viewer's licence         refused
KENCPUPR   P/P "public key" (1.20–1.24)   second stage not identified publicly               refused
KENCRURR   R/R "custom key" (2023+)       second stage not identified publicly               refused
========== ============================== ================================================== =========

The default key is the 16 characters ``actions overflow``; every decryption is checked (LZ4 lengths,
UTF-8, a ``<krpano>`` root), so a wrong key or an unknown variant gives a :class:`MetadataError` naming the
variant, never garbage. Primitives, as reverse-engineered in dezoomify-rs (``src/krpano/encrypted``):

* **Base85\\***: groups of 5 characters (a trailing partial group is ignored); digit = code − 35, minus 1
  more above 56 (``\\`` is not a digit); ``value = value·85 + digit``, written as a big-endian u32.
* **byte cipher** (RC4-like): the input's first 128 bytes are a salt; the ciphertext starts at
  ``128 + (input[65] & 7)``; the KSA runs over 256 bytes interleaving ``input[i]`` and ``key[i & mask]``
  (mask 15, or 135 "widened"; a key index past the key's end makes that KSA step set ``j = 0``); 256
  keystream bytes are discarded; each output byte is computed before the swap of its step.
* **LZ4 block** behind an 8-byte header: u24 LE decompressed length at 0, u24 LE compressed length at 4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import MetadataError

__all__ = [
    "DEFAULT_KEY",
    "KencHeader",
    "byte_cipher",
    "decode_base64",
    "decode_base85",
    "decrypt_xml",
    "encrypted_payload",
    "is_encrypted",
    "lz4_block",
    "maybe_decrypt",
    "parse_header",
    "unpack_lz4",
]

DEFAULT_KEY = b"actions overflow"
SALT = 128
#: refuse payloads (characters) and plaintexts (bytes) larger than this before decoding them
MAX_PAYLOAD = 64 << 20
MAX_PLAINTEXT = 64 << 20
STANDARD_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

_ENCRYPTED = re.compile(rb"<encrypted\b[^>]*>(.*?)</encrypted\s*>", re.I | re.S)
_CDATA = re.compile(rb"<!\[CDATA\[(.*?)\]\]>", re.S)
_WS = re.compile(r"\s+")

_HINT_UNSOLVED = (
    "Only the KENCPUZR and KENCPUBR variants (krpano's default key) can be decrypted. Look for an "
    "unencrypted copy of the XML, or open the tour in a browser and save the tile URLs it requests as a "
    "tiles.yaml (--dezoomer custom)."
)
_HINT_BROKEN = "The encrypted XML may be truncated or damaged: download it again, or check the URL."

#: (mode character, key-source character) → description; key source is the header's 7th character
_VARIANTS = {
    ("P", "Z"): "modern Z (krpano 1.19+, default key)",
    ("R", "Z"): "old Z (krpano ≤ 1.19, key derived from the viewer licence)",
    ("P", "B"): "old B (krpano 2012–2013, default key)",
    ("R", "B"): "old B (krpano 2012–2015, key derived from the viewer licence)",
    ("P", "P"): "P/P 'public key' (krpanotools encrypt -p, krpano 1.20–1.24)",
    ("R", "R"): "R/R 'custom key' (krpanotools encrypt -key, krpano 1.21+)",
}


@dataclass(frozen=True)
class KencHeader:
    """The 8-character ``KENC`` header: ``mode`` (5th), ``encoding`` (6th), ``key_source`` (7th), ``flags``."""

    raw: str

    @property
    def mode(self) -> str:
        return self.raw[4]

    @property
    def key_source(self) -> str:
        return self.raw[6]

    @property
    def branch(self) -> str:
        """``"Z"``, ``"B"``, ``"PP"``, ``"RR"`` or ``"unknown"`` (from the 7th character's code − 80)."""
        return {10: "Z", -14: "B", 0: "PP", 2: "RR"}.get(ord(self.key_source) - 80, "unknown")

    @property
    def old(self) -> bool:
        """Mode value 1 (``R``): a licence-derived key and the widened key mask."""
        return (ord(self.mode) - 80) >> 1 == 1

    @property
    def solvable(self) -> bool:
        return self.branch in ("Z", "B") and not self.old

    def describe(self) -> str:
        name = _VARIANTS.get((self.mode, self.key_source))
        if name is None:
            name = {"Z": "a Z variant", "B": "a B variant", "PP": "a P/P variant", "RR": "an R/R variant"}.get(
                self.branch, "an unknown variant")
        return f"{self.raw}, {name}"


def is_encrypted(data: bytes) -> bool:
    """Whether ``data`` is an encrypted krpano XML (an ``<encrypted>`` element or a bare ``KENC`` payload)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"KENC"):
        return True
    m = _ENCRYPTED.search(data)
    return m is not None and b"KENC" in m.group(1)[:4096]


def encrypted_payload(data: bytes) -> str:
    """The ``KENC…`` text: the CDATA sections of ``<encrypted>`` concatenated, else its trimmed text."""
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"KENC"):
        inner = stripped
    else:
        m = _ENCRYPTED.search(data)
        if m is None:
            raise MetadataError("not an encrypted krpano XML (no <encrypted> element)", hint=_HINT_BROKEN)
        inner = m.group(1)
        sections = _CDATA.findall(inner)
        if sections:
            inner = b"".join(sections)
    if len(inner) > MAX_PAYLOAD:
        raise MetadataError(f"the encrypted krpano payload is over {MAX_PAYLOAD} characters")
    text = inner.decode("latin-1")
    return _WS.sub("", text)


def parse_header(payload: str) -> KencHeader:
    if len(payload) < 8 or not payload.startswith("KENC"):
        raise MetadataError(f"the encrypted krpano payload has no KENC header ({payload[:8]!r})", hint=_HINT_BROKEN)
    return KencHeader(payload[:8])


# --- primitives ---------------------------------------------------------------------------------------
def decode_base85(text: str, *, little_endian: bool = False) -> bytes:
    """krpano's modified Base85 (see the module docstring); MetadataError on a character out of range."""
    n = len(text) // 5 * 5
    raw = np.frombuffer(text[:n].encode("latin-1"), dtype=np.uint8).astype(np.int64)
    digits = raw - 35
    digits = np.where(digits > 56, digits - 1, digits)
    bad = np.flatnonzero((raw < 35) | (digits > 84))
    if bad.size:
        ch = text[int(bad[0])]
        raise MetadataError(f"the encrypted krpano payload has an invalid Base85 character {ch!r}", hint=_HINT_BROKEN)
    groups = digits.reshape(-1, 5)
    values = (((groups[:, 0] * 85 + groups[:, 1]) * 85 + groups[:, 2]) * 85 + groups[:, 3]) * 85 + groups[:, 4]
    return (values & 0xFFFFFFFF).astype("<u4" if little_endian else ">u4").tobytes()


def decode_base64(text: str, alphabet: str = STANDARD_BASE64) -> bytes:
    """Base64 with a 65-character alphabet (the 65th pads); a trailing partial quadruple is ignored."""
    lookup = {c: i for i, c in enumerate(alphabet[:65])}
    out = bytearray()
    for k in range(0, len(text) // 4 * 4, 4):
        try:
            a, b, c, d = (lookup[ch] for ch in text[k : k + 4])
        except KeyError:
            bad = next(ch for ch in text[k : k + 4] if ch not in lookup)
            raise MetadataError(f"the encrypted krpano payload has an invalid Base64 character {bad!r}",
                                hint=_HINT_BROKEN) from None
        out.append(((a << 2) | (b >> 4)) & 255)
        if c != 64:
            out.append((((b & 15) << 4) | (c >> 2)) & 255)
        if d != 64:
            out.append((((c & 3) << 6) | d) & 255)
    return bytes(out)


def byte_cipher(data: bytes, key: bytes, *, widened: bool = False) -> bytes:
    """krpano's RC4-like byte cipher (a symmetric XOR stream: it also encrypts). See the module docstring."""
    if len(data) < SALT or not key:
        raise MetadataError(f"the encrypted krpano payload is too short ({len(data)} bytes)", hint=_HINT_BROKEN)
    start = SALT + (data[65] & 7)
    if start > len(data):
        raise MetadataError("the encrypted krpano payload is too short", hint=_HINT_BROKEN)
    mask = 15 | (15 << 3) if widened else 15
    mix: list[int | None] = []
    for i in range(SALT):
        mix.append(data[i])
        mix.append(key[i & mask] if (i & mask) < len(key) else None)
    s = list(range(256))
    j = 0
    for i in range(256):
        m = mix[i]
        j = 0 if m is None else (j + s[i] + m) & 255
        s[i], s[j] = s[j], s[i]
    i = j = 0
    for _ in range(256):
        i = (i + 1) & 255
        j = (j + s[i]) & 255
        s[i], s[j] = s[j], s[i]
    out = bytearray(len(data) - start)
    for n, byte in enumerate(memoryview(data)[start:]):
        i = (i + 1) & 255
        si = s[i]
        j = (j + si) & 255
        sj = s[j]
        out[n] = byte ^ s[(si + sj) & 255]
        s[i], s[j] = sj, si
    return bytes(out)


def _lz4_length(data: bytes, src: int, end: int, length: int, broken: Exception) -> tuple[int, int]:
    """An LZ4 length of 15 continues in the next bytes (each 255 means more); returns (length, src)."""
    while True:
        if src >= end:
            raise broken
        extra = data[src]
        src += 1
        length += extra
        if extra != 255:
            return length, src


def lz4_block(data: bytes, size: int) -> bytes:
    """Decompress one LZ4 block (no frame) that must give exactly ``size`` bytes."""
    if size > MAX_PLAINTEXT:
        raise MetadataError(f"the encrypted krpano XML declares {size} bytes, over the cap")
    out = bytearray()
    src, end = 0, len(data)
    broken = MetadataError("the decrypted krpano payload is not a valid LZ4 block (wrong key or damaged data)",
                           hint=_HINT_BROKEN)
    while src < end:
        token = data[src]
        src += 1
        length = token >> 4
        if length == 15:
            length, src = _lz4_length(data, src, end, length, broken)
        if src + length > end or len(out) + length > size:
            raise broken
        out += data[src : src + length]
        src += length
        if src == end:
            break
        if src + 2 > end:
            raise broken
        offset = data[src] | (data[src + 1] << 8)
        src += 2
        if offset == 0 or offset > len(out):
            raise broken
        length = token & 15
        if length == 15:
            length, src = _lz4_length(data, src, end, length, broken)
        length += 4
        if len(out) + length > size:
            raise broken
        start = len(out) - offset
        if offset >= length:
            out += out[start : start + length]
        else:  # an overlapping match repeats the last `offset` bytes
            pattern = bytes(out[start:])
            out += (pattern * (length // offset + 1))[:length]
    if len(out) != size:
        raise broken
    return bytes(out)


def unpack_lz4(data: bytes) -> bytes:
    """An LZ4 block behind krpano's 8-byte header (u24 LE sizes at 0 and 4)."""
    if len(data) < 8:
        raise MetadataError("the decrypted krpano payload is too short for its LZ4 header", hint=_HINT_BROKEN)
    size = int.from_bytes(data[0:3], "little")
    compressed = int.from_bytes(data[4:7], "little")
    if 8 + compressed > len(data):
        raise MetadataError("the decrypted krpano payload is shorter than its LZ4 header says (wrong key or "
                            "damaged data)", hint=_HINT_BROKEN)
    return lz4_block(data[8 : 8 + compressed], size)


# --- the whole document -------------------------------------------------------------------------------
def _plaintext(header: KencHeader, body: str, key: bytes) -> bytes:
    widened = header.old
    if header.branch == "Z":
        return unpack_lz4(byte_cipher(decode_base85(body), key, widened=widened))
    return byte_cipher(decode_base64(body), key, widened=widened)


def _looks_like_krpano(text: bytes) -> bool:
    head = text.lstrip(b"\xef\xbb\xbf \t\r\n")[:65536]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a cut multi-byte character at the end is fine
            return False
    return head.startswith(b"<") and b"<krpano" in head


def decrypt_xml(data: bytes) -> bytes:
    """The plaintext XML of an encrypted krpano XML; MetadataError naming the variant when not solvable."""
    payload = encrypted_payload(data)
    header = parse_header(payload)
    body = payload[8:]
    if header.branch not in ("Z", "B"):
        raise MetadataError(f"this krpano XML is encrypted with {header.describe()}, which cannot be decrypted "
                            "(the public reverse-engineering of krpano stops there)", hint=_HINT_UNSOLVED)
    try:
        text = _plaintext(header, body, DEFAULT_KEY)
    except MetadataError as exc:
        if header.solvable:
            raise MetadataError(f"this encrypted krpano XML ({header.describe()}) could not be decrypted: {exc}",
                                hint=exc.hint) from None
        text = b""
    if not _looks_like_krpano(text):
        if not header.solvable:
            raise MetadataError(f"this krpano XML is encrypted with {header.describe()}: its key is derived from "
                                "the tour's licensed viewer, which is not supported", hint=_HINT_UNSOLVED)
        raise MetadataError(f"this encrypted krpano XML ({header.describe()}) did not decrypt to krpano XML with "
                            "the default key", hint=_HINT_BROKEN)
    return text


def maybe_decrypt(data: bytes) -> bytes:
    """``data`` itself, or its plaintext when it is an encrypted krpano XML (MetadataError if not solvable)."""
    return decrypt_xml(data) if is_encrypted(data) else data
