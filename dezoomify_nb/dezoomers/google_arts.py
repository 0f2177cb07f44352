"""Google Arts & Culture: an ``artsandculture.google.com/asset/...`` page, signed and encrypted tiles.

Round 1 scrapes the asset page for the image's base URL (``//lh3.googleusercontent.com/ci/...``) and
its token; round 2 reads the tile info XML at ``base_url + "=g"`` (pyramid levels, smallest first).
Tile URLs carry an HMAC-SHA1 signature of the path, and served tiles may be partly AES-encrypted: the
level's :meth:`GoogleArtsLevel.postprocess` decrypts them at decode time (the cache keeps them as
served). Constants and layout follow dezoomify-rs (see the format reference, §4).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import struct
from dataclasses import dataclass

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, Image, Level
from ._common import attr, local_name, parse_xml, referer
from .base import Context, Dezoomer

NAME = "google_arts_and_culture"
DEFAULT_TITLE = "Google Arts and Culture Image"
HOST_MARKER = "artsandculture.google.com"

_SIGN_KEY = bytes([0x7B, 0x2B, 0x4E, 0x23, 0xDE, 0x2C, 0xC5, 0xC5])
_AES_KEY = bytes.fromhex("5b63db113b7af3e0b1435556c8f9530c")
_AES_IV = bytes.fromhex("71e70405353a778bfa6fbc30321b9592")
_MAGIC = 0x0A0A0A0A

#: ``]``, optional CR/LF, then ``,"//host/path",`` followed by a quoted token or ``null``
_BASE_RE = re.compile(r'\]\r?\n?,"(//[A-Za-z0-9./_-]+)",(?:"([^"]+)"|null)')
_HEADER_RE = re.compile(
    r'<h1 class="[^"]+">([^<]+)</h1><h2 class="[^"]+"><span class="[^"]+"><a href="[^"]+">([^"]+)</a>'
    r'</span><span class="[^"]+">([^<]+)</span></h2>'
)
_NAME_RE = re.compile(r'"name":"([^"]+)')

_HINT = ("Give the URL of an artwork page (https://artsandculture.google.com/asset/...); Google changes "
         "its page format from time to time, so an update of dezoomify_nb may be needed.")


@dataclass(frozen=True)
class PageInfo:
    base_url: str
    token: str
    name: str

    @property
    def path(self) -> str:
        """``base_url`` without ``https://host/``: the part that is signed."""
        parts = self.base_url.split("/", 3)
        return parts[3] if len(parts) == 4 else ""

    @property
    def tile_info_url(self) -> str:
        return self.base_url + "=g"


def _json_string(raw: str) -> str:
    """Decode the JSON escapes of a string value cut out of a page (``\\u0026`` → ``&``)."""
    try:
        return str(json.loads(f'"{raw}"'))
    except ValueError:
        return raw


def page_title(page: str) -> str:
    """``"LASTNAME, FIRSTNAMES; TITLE; DATE"`` from the header markup, else the first ``"name"``."""
    m = _HEADER_RE.search(page)
    if m:
        title, creator, date = m.groups()
        first, sep, last = creator.rpartition(" ")
        if sep and first:
            return html.unescape(f"{last}, {first}; {title}; {date}")
    m = _NAME_RE.search(page)
    if m:
        return html.unescape(_json_string(m.group(1)))
    return DEFAULT_TITLE


def parse_page(data: bytes) -> PageInfo:
    page = data.decode("utf-8", errors="replace")
    m = _BASE_RE.search(page)
    if not m:
        raise MetadataError("Unable to find the image path and token in the Google Arts & Culture page",
                            hint=_HINT)
    return PageInfo(base_url="https:" + m.group(1), token=m.group(2) or "", name=page_title(page))


def signature(path: str, token: str, x: int, y: int, z: int) -> str:
    """The ``-t`` suffix of a tile URL: base64url(HMAC-SHA1(path + "=x..-y..-z..-t" + token)), ``-``→``_``."""
    msg = f"{path}=x{x}-y{y}-z{z}-t{token}".encode()
    digest = hmac.new(_SIGN_KEY, msg, hashlib.sha1).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=").replace("-", "_")


def tile_url(page: PageInfo, x: int, y: int, z: int) -> str:
    return f"{page.base_url}=x{x}-y{y}-z{z}-t{signature(page.path, page.token, x, y, z)}"


def _aes_cbc_decrypt(block: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(_AES_KEY), modes.CBC(_AES_IV)).decryptor()
    return decryptor.update(block) + decryptor.finalize()


def decrypt_tile(data: bytes) -> bytes:
    """Decrypt a served tile; bytes that do not start with the ``0x0A0A0A0A`` marker are returned as is.

    Layout (little-endian u32s): marker, clear header, encrypted length, AES-128-CBC block (no padding),
    clear footer, then the clear header's length as the last 4 bytes.
    """
    if len(data) < 4 or struct.unpack_from("<I", data, 0)[0] != _MAGIC:
        return data
    end = len(data) - 4
    if end < 8:
        raise MetadataError(f"encrypted tile is too short ({len(data)} bytes)")
    (header_size,) = struct.unpack_from("<I", data, end)
    if 4 + header_size + 4 > end:
        raise MetadataError(f"The size of the unencrypted header ({header_size}) is invalid.")
    header = data[4 : 4 + header_size]
    (enc_size,) = struct.unpack_from("<I", data, 4 + header_size)
    start = 4 + header_size + 4
    if start + enc_size > end:
        raise MetadataError(f"The size of the encrypted data ({enc_size}) is invalid.")
    if enc_size % 16:
        raise MetadataError(f"The size of the encrypted data ({enc_size}) is not a multiple of 16.")
    clear = _aes_cbc_decrypt(data[start : start + enc_size]) if enc_size else b""
    return header + clear + data[start + enc_size : end]


@dataclass(frozen=True)
class GoogleArtsLevel(Level):
    """Level ``z`` (0 = smallest) of a Google Arts & Culture pyramid."""

    base_url: str = ""
    token: str = ""
    z: int = 0

    def tile_url(self, col: int, row: int) -> str:
        return tile_url(PageInfo(self.base_url, self.token, ""), col, row, self.z)

    def postprocess(self, data: bytes) -> bytes:
        return decrypt_tile(data)


def _int_attr(el, name: str) -> int:
    v = (attr(el, name) or "").strip()
    if not re.fullmatch(r"\d{1,9}", v):
        raise MetadataError(f"invalid {name} {v!r} in the Google Arts & Culture tile info")
    return int(v)


def parse_tile_info(data: bytes, page: PageInfo) -> list[GoogleArtsLevel]:
    root = parse_xml(data)
    if root is None or local_name(root) != "TileInfo":
        raise MetadataError(f"{page.tile_info_url} is not a Google Arts & Culture TileInfo document",
                            hint=_HINT)
    tw, th = _int_attr(root, "tile_width"), _int_attr(root, "tile_height")
    pyramid = [el for el in root if local_name(el) == "pyramid_level"]
    if not pyramid:
        raise MetadataError("the Google Arts & Culture tile info lists no pyramid level")
    if len(pyramid) > MAX_LEVELS:
        raise MetadataError(f"{len(pyramid)} levels is over the sanity cap")
    levels: list[GoogleArtsLevel] = []
    for z, el in enumerate(pyramid):
        width = tw * _int_attr(el, "num_tiles_x") - _int_attr(el, "empty_pels_x")
        height = th * _int_attr(el, "num_tiles_y") - _int_attr(el, "empty_pels_y")
        if width <= 0 or height <= 0:
            continue  # an empty level has no tile to fetch
        first = tile_url(page, 0, 0, z)
        levels.append(GoogleArtsLevel(width, height, tw, th, headers=referer(first), name=page.name,
                                      base_url=page.base_url, token=page.token, z=z))
    if not levels:
        raise MetadataError("every level of the Google Arts & Culture tile info is empty")
    return levels


class GoogleArtsDezoomer(Dezoomer):
    name = NAME
    description = "Google Arts & Culture (artsandculture.google.com asset pages)"

    def images(self, ctx: Context) -> list[Image]:
        if HOST_MARKER not in ctx.url:
            raise WrongDezoomer("not an artsandculture.google.com URL")
        page = parse_page(ctx.get(ctx.url))
        levels = parse_tile_info(ctx.get(page.tile_info_url), page)
        return [Image(levels=tuple(levels), title=page.name, dezoomer=self.name, url=ctx.url)]
