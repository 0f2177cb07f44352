"""ZIF (Zoomify single-file format): one BigTIFF whose directories (IFDs) are the zoom levels.

A ``.zif`` URL (a query such as ``?t1604693839555`` or ``…?url=…/x.zif`` is fine) or local path is read
piece by piece with byte ranges (``url#bytes=a-b`` keys: an HTTP ``Range`` header, or a seek for a local
file); nothing else is ever downloaded:

1. the first 16 KiB (Zoomify writes the header and every IFD there: usually the only request);
2. each IFD outside what is held so far (one speculative 1 KiB read, exact reads if that runs past the
   end of a local file), following the chain until the next offset is 0, a loop, or :data:`MAX_IFDS`;
3. the ``TileOffsets``/``TileByteCounts`` arrays (and ``JPEGTables``) that are not inline nor held, all
   at once, neighbouring ones coalesced into one range (gaps ≤ 64 KiB, ranges ≤ 16 MiB);
4. then each tile is one range ``[offset, offset + count)`` (:class:`ZifLevel`).

Little- and big-endian, BigTIFF and (tolerated) classic TIFF are read; offsets and counts may be SHORT,
LONG or LONG8, inline or not. Consecutive IFDs that halve their predecessor (±1 px) are the levels of one
image; an IFD of unrelated size starts another image (lovasoa's "collections"; ``dz.open_all``). IFDs
without tiles (strip thumbnails) are skipped. Tiles may be JPEG, PNG or JPEG 2000; JPEG edge tiles may be
clipped (Zoomify) or padded (libtiff, tifffile). JPEG tiles that rely on a shared ``JPEGTables`` tag
(abbreviated streams) get the tables spliced in, and RGB JPEG (Photometric 2) tiles without an Adobe
marker get one saying "no YCbCr transform", in :meth:`ZifLevel.postprocess`.

A ZIF served by a script (``…/DisplayImage?id=42``, ``getimage.php?f=7``: a query string, and a last path
segment without an extension or with a script's) is recognised by its bytes: the first read (1.) is made
for such URLs too, and only a TIFF/BigTIFF header (``II*\0``, ``MM\0*``, ``II+\0``, ``MM\0+``) goes on; anything
else (an HTML page, a server ignoring ``Range``, an error) is "not a ZIF" and the next dezoomer is tried.
URLs naming another format (``FIF=``, ``IIIF=``, ``.dzi``, ``.json``, …) are not probed.

A server that ignores ``Range`` (answers 200 with the whole file) is reported at once with a
:class:`~dezoomify_nb.errors.DezoomerError` (not a "try the next dezoomer" error: the others would
download the whole file for nothing); its hint says to download the file and give its path.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import numpy as np

from ..errors import DezoomerError, FetchError, MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_SIDE, MAX_TILE_SIDE, Image, Level, ceil_div
from ..ranges import split_range, with_range
from .base import Context, Dezoomer

log = logging.getLogger(__name__)

ZIF_URL = re.compile(r"\.zif(?:[?#&]|$)", re.I)
_STEM = re.compile(r"([^/\\?#=&]+)\.zif(?:[?#&]|$)", re.I)
#: a script that may serve a ZIF: its URL has a query and its last segment no extension, or a script's
_SCRIPT_EXT = re.compile(r"\.(?:php\d?|aspx?|ashx|axd|jsp|jspx|cgi|fcgi|pl|py|do|action|dll|exe|cfm)$", re.I)
#: a query naming another format (those dezoomers read the URL): no probe
_OTHER_FORMAT = re.compile(
    r"(?:^|[&;])(?:FIF|IIIF|Zoomify|DeepZoom)=|\.(?:dzi|xml|json|html?|js|jpe?g|png|gif|webp|txt|ya?ml|pff)(?:[&;#/]|$)",
    re.I)
TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
HEAD_BYTES = 16384
IFD_GUESS = 1024
MAX_IFDS = 256
MAX_ENTRIES = 1024
#: tiles over all IFDs (the offset/count arrays of more would be hundreds of MB)
MAX_TILES_TOTAL = 1 << 24
MAX_TABLES = 1 << 16
COALESCE_GAP = 1 << 16
MAX_RANGE = 16 << 20

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_INT_TYPES = {1: "u1", 3: "u2", 4: "u4", 13: "u4", 16: "u8", 18: "u8"}
_COMPRESSIONS = {1: "none", 5: "LZW", 6: "old-style JPEG", 8: "Deflate", 32946: "Deflate", 34712: "JPEG 2000",
                 34933: "PNG", 34934: "JPEG XR", 50000: "Zstandard", 50001: "WebP", 7: "JPEG"}
_SUPPORTED = (7, 34933, 34712)
_HINT_FILE = ("A .zif is a BigTIFF: download the file itself and open it with tifffile, GIMP or QuPath "
              "(rename it to .tif), or give its local path here.")

# tags
WIDTH, HEIGHT, COMPRESSION, PHOTOMETRIC, PLANAR = 256, 257, 259, 262, 284
TILE_W, TILE_H, TILE_OFFSETS, TILE_COUNTS, JPEG_TABLES = 322, 323, 324, 325, 347

#: APP14 "Adobe" marker, version 100, flags 0, transform 0 (the components are RGB, not YCbCr)
ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"


def _jpeg_markers(data: bytes) -> set[int]:
    """The marker codes of the segments before the first SOS of a JPEG stream."""
    found: set[int] = set()
    i, n = 2, len(data)
    for _ in range(4096):
        if i + 4 > n or data[i] != 0xFF:
            break
        m = data[i + 1]
        if m == 0xFF:
            i += 1
            continue
        if m == 0xDA:
            break
        if m == 0x01 or 0xD0 <= m <= 0xD8:
            i += 2
            continue
        found.add(m)
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return found


def fix_jpeg(data: bytes, tables: bytes = b"", rgb: bool = False) -> bytes:
    """Make a TIFF JPEG tile decodable alone: splice ``tables`` (a JPEGTables stream) into an abbreviated
    stream that lacks DQT or DHT, and add an Adobe "RGB" marker when ``rgb`` and none is there."""
    if not data.startswith(b"\xff\xd8"):
        return data
    markers = _jpeg_markers(data)
    insert = b""
    if tables and (0xDB not in markers or 0xC4 not in markers):
        body = tables[2:] if tables.startswith(b"\xff\xd8") else tables
        insert += body[:-2] if body.endswith(b"\xff\xd9") else body
    if rgb and 0xEE not in markers:
        insert += ADOBE_RGB
    return data[:2] + insert + data[2:] if insert else data


@dataclass(frozen=True)
class ZifLevel(Level):
    """One IFD: tile ``i = row·cols + col`` is bytes ``[offsets[i], offsets[i] + counts[i])`` of ``source``.

    ``offsets`` and ``counts`` are packed little-endian u64 (picklable, compact); ``jpeg_tables`` is the
    IFD's JPEGTables stream (empty when the tiles are complete JPEG streams, as in conformant ZIF).
    """

    source: str = ""
    offsets: bytes = b""
    counts: bytes = b""
    jpeg_tables: bytes = b""
    rgb_jpeg: bool = False

    def tile_url(self, col: int, row: int) -> str:
        i = 8 * (row * self.cols + col)
        off = int.from_bytes(self.offsets[i : i + 8], "little")
        count = int.from_bytes(self.counts[i : i + 8], "little")
        return with_range(self.source, off, off + max(count, 1) - 1)  # an empty (sparse) tile fails to decode

    def postprocess(self, data: bytes) -> bytes:
        if self.jpeg_tables or self.rgb_jpeg:
            return fix_jpeg(data, self.jpeg_tables, self.rgb_jpeg)
        return data


@dataclass(frozen=True)
class _Entry:
    tag: int
    type: int
    count: int
    inline: bytes | None  # the value bytes when they fit in the entry
    offset: int  # else where they are in the file

    @property
    def nbytes(self) -> int:
        return self.count * _TYPE_SIZES[self.type]


class _File:
    """Byte ranges of one file, as far as ``ctx`` holds them; reading more raises NeedsData."""

    def __init__(self, ctx: Context, url: str) -> None:
        self.ctx, self.url = ctx, url
        self.chunks: list[tuple[int, bytes]] = []
        for key, data in ctx.pages.items():
            target, rng = split_range(key)
            if rng is not None and target == url and isinstance(data, bytes):
                self.chunks.append((rng[0], data))
        self.chunks.sort(key=lambda c: c[0])

    def held(self, off: int, n: int) -> bytes | None:
        out, pos, end = bytearray(), off, off + n
        while pos < end:
            best: tuple[int, bytes] | None = None
            for start, data in self.chunks:
                if start <= pos < start + len(data) and (best is None or start + len(data) > best[0] + len(best[1])):
                    best = (start, data)
            if best is None:
                return None
            start, data = best
            piece = data[pos - start : end - start]
            out += piece
            pos += len(piece)
        return bytes(out)

    def _get(self, off: int, n: int) -> bytes:
        data = self.ctx.get(with_range(self.url, off, off + n - 1))
        self.chunks.append((off, data))
        self.chunks.sort(key=lambda c: c[0])
        return data

    def read(self, off: int, n: int, guess: int = 0) -> bytes:
        """Bytes ``[off, off + n)``; ``guess`` asks for that many at once (less if the file ends)."""
        got = self.held(off, n)
        if got is not None:
            return got
        if guess > n:
            try:
                self._get(off, guess)
            except FetchError as exc:
                if exc.status != 416:  # past the end of the file: ask for exactly what is needed
                    raise
            got = self.held(off, n)
            if got is not None:
                return got
        try:
            self._get(off, n)
        except FetchError as exc:
            if exc.status != 416:
                raise
        got = self.held(off, n)
        if got is None:
            raise MetadataError(f"the file ends before byte {off + n} (truncated ZIF?)", hint=_HINT_FILE)
        return got

    def prefetch(self, spans: list[tuple[int, int]]) -> None:
        """Ask at once for every ``(off, n)`` span not held, neighbours coalesced into few ranges."""
        need = sorted((o, o + n) for o, n in spans if n > 0 and self.held(o, n) is None)
        ranges: list[list[int]] = []
        for start, end in need:
            if ranges and start - ranges[-1][1] <= COALESCE_GAP and max(end, ranges[-1][1]) - ranges[-1][0] <= MAX_RANGE:
                ranges[-1][1] = max(ranges[-1][1], end)
            else:
                ranges.append([start, end])
        keys = []
        for start, end in ranges:
            for piece in range(start, end, MAX_RANGE):
                keys.append(with_range(self.url, piece, min(piece + MAX_RANGE, end) - 1))
        self.ctx.prefetch(keys)


class _Tiff:
    """The header and IFD chain of a TIFF/BigTIFF read through :class:`_File`."""

    def __init__(self, f: _File) -> None:
        self.f = f
        head = f.read(0, 16, guess=HEAD_BYTES)
        if head[:2] == b"II":
            self.bo = "<"
        elif head[:2] == b"MM":
            self.bo = ">"
        else:
            raise MetadataError(f"not a ZIF file: it starts with {head[:8]!r}, not a TIFF header", hint=_HINT_FILE)
        version = self.unpack("H", head, 2)
        if version == 43:
            if self.unpack("H", head, 4) != 8 or self.unpack("H", head, 6) != 0:
                raise MetadataError("invalid BigTIFF header (offset size must be 8)", hint=_HINT_FILE)
            self.big, self.first = True, self.unpack("Q", head, 8)
        elif version == 42:
            self.big, self.first = False, self.unpack("I", head, 4)
        else:
            raise MetadataError(f"not a ZIF file: TIFF version {version} (ZIF is BigTIFF, 43)", hint=_HINT_FILE)
        self.count_fmt, self.entry_size, self.slot, self.off_fmt = (
            ("Q", 20, 8, "Q") if self.big else ("H", 12, 4, "I"))

    def unpack(self, fmt: str, data: bytes, at: int) -> int:
        return struct.unpack_from(self.bo + fmt, data, at)[0]

    def ifd(self, offset: int) -> tuple[dict[int, _Entry], int]:
        csize = struct.calcsize(self.count_fmt)
        n = self.unpack(self.count_fmt, self.f.read(offset, csize, guess=IFD_GUESS), 0)
        if not 0 < n <= MAX_ENTRIES:
            raise MetadataError(f"an IFD at byte {offset} declares {n} entries (at most {MAX_ENTRIES} are read)",
                                hint=_HINT_FILE)
        osize = struct.calcsize(self.off_fmt)
        body = self.f.read(offset + csize, n * self.entry_size + osize)
        entries: dict[int, _Entry] = {}
        for k in range(n):
            at = k * self.entry_size
            tag, typ = self.unpack("H", body, at), self.unpack("H", body, at + 2)
            count = self.unpack(self.off_fmt, body, at + 4)
            slot = body[at + 4 + osize : at + 4 + osize + self.slot]
            size = _TYPE_SIZES.get(typ)
            if size is None or tag in entries:
                continue
            if count * size <= self.slot:
                entries[tag] = _Entry(tag, typ, count, slot[: count * size], 0)
            else:
                entries[tag] = _Entry(tag, typ, count, None, self.unpack(self.off_fmt, slot, 0))
        return entries, self.unpack(self.off_fmt, body, n * self.entry_size)

    def chain(self) -> list[dict[int, _Entry]]:
        out: list[dict[int, _Entry]] = []
        seen: set[int] = set()
        offset = self.first
        while offset:
            if offset in seen:
                log.warning("zif: the IFD chain loops back to byte %d; stopping there", offset)
                break
            if len(out) >= MAX_IFDS:
                log.warning("zif: more than %d IFDs; reading the first %d only", MAX_IFDS, MAX_IFDS)
                break
            seen.add(offset)
            entries, offset = self.ifd(offset)
            out.append(entries)
        if not out:
            raise MetadataError("the ZIF file has no image directory (IFD)", hint=_HINT_FILE)
        return out

    def ints(self, e: _Entry, count: int | None = None) -> np.ndarray:
        """The first ``count`` values of an integer entry (inline, or held after :meth:`_File.prefetch`)."""
        kind = _INT_TYPES.get(e.type)
        if kind is None:
            raise MetadataError(f"TIFF tag {e.tag} has type {e.type}, not an integer type", hint=_HINT_FILE)
        n = e.count if count is None else count
        size = _TYPE_SIZES[e.type]
        raw = e.inline[: n * size] if e.inline is not None else self.f.read(e.offset, n * size)
        return np.frombuffer(raw, dtype=np.dtype(kind).newbyteorder(self.bo)).astype(np.uint64)

    def scalar(self, entries: dict[int, _Entry], tag: int, default: int | None = None) -> int | None:
        e = entries.get(tag)
        if e is None or e.inline is None or e.count < 1 or e.type not in _INT_TYPES:
            return default
        return int(self.ints(e, 1)[0])


@dataclass
class _Plan:
    index: int
    width: int
    height: int
    tw: int
    th: int
    compression: int
    rgb: bool
    offsets: _Entry
    counts: _Entry
    tables: _Entry | None

    @property
    def n(self) -> int:
        return ceil_div(self.width, self.tw) * ceil_div(self.height, self.th)


def _plan(tiff: _Tiff, k: int, entries: dict[int, _Entry]) -> _Plan | str:
    """What IFD ``k`` is, or why it is skipped."""
    if TILE_OFFSETS not in entries or TILE_COUNTS not in entries:
        return f"IFD {k} has no tiles (a strip image, e.g. a thumbnail)"
    dims = [tiff.scalar(entries, t) for t in (WIDTH, HEIGHT, TILE_W, TILE_H)]
    if any(d is None or d <= 0 for d in dims):
        return f"IFD {k} lacks its size or tile size"
    w, h, tw, th = (int(d) for d in dims)  # type: ignore[arg-type]
    if w > MAX_SIDE or h > MAX_SIDE or tw > MAX_TILE_SIDE or th > MAX_TILE_SIDE:
        raise MetadataError(f"IFD {k} declares {w}x{h} px in {tw}x{th} tiles, over the sanity caps")
    compression = tiff.scalar(entries, COMPRESSION, 1) or 1
    if compression not in _SUPPORTED:
        return f"IFD {k} uses TIFF compression {compression} ({_COMPRESSIONS.get(compression, 'unknown')})"
    if (tiff.scalar(entries, PLANAR, 1) or 1) != 1:
        return f"IFD {k} stores colour planes separately (PlanarConfiguration 2)"
    photometric = tiff.scalar(entries, PHOTOMETRIC, 6)
    plan = _Plan(k, w, h, tw, th, compression, compression == 7 and photometric == 2,
                 entries[TILE_OFFSETS], entries[TILE_COUNTS], entries.get(JPEG_TABLES))
    for e in (plan.offsets, plan.counts):
        if e.type not in (3, 4, 13, 16, 18) or e.count < plan.n:
            raise MetadataError(f"IFD {k}: {plan.n} tiles but tag {e.tag} has {e.count} values of type {e.type}",
                                hint=_HINT_FILE)
    if plan.tables is not None and (plan.tables.nbytes > MAX_TABLES or compression != 7):
        plan.tables = None
    return plan


def _halves(big: tuple[int, int] | None, small: tuple[int, int]) -> bool:
    return big is not None and abs(2 * small[0] - big[0]) <= 2 and abs(2 * small[1] - big[1]) <= 2


def zif_title(url: str) -> str | None:
    found = _STEM.findall(url)
    return unquote(found[-1]) if found else None


def may_be_script(url: str) -> bool:
    """Whether ``url`` may be a script serving a ZIF (its first bytes are read to tell)."""
    if not url.startswith(("http://", "https://")) or "{{" in url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    seg = parts.path.rsplit("/", 1)[-1]
    if not parts.query or ("." in seg and not _SCRIPT_EXT.search(seg)):
        return False
    return not _OTHER_FORMAT.search(unquote(parts.query))


class ZifDezoomer(Dezoomer):
    name = "zif"
    description = "Zoomify single-file .zif (BigTIFF) images, read with HTTP Range requests or from a local file"

    def images(self, ctx: Context) -> list[Image]:
        url = split_range(ctx.url)[0]  # a byte-range URL (a tile's) leads back to the file
        if not ZIF_URL.search(url):
            if not may_be_script(url):
                raise WrongDezoomer("not a .zif URL or path")
            self._sniff(ctx, url)
        try:
            return self._images(ctx, url)
        except FetchError as exc:
            if exc.status == 200:  # net.fetch: a 200 answer to a Range request
                host = url if not url.startswith(("http://", "https://")) else url.split("/")[2]
                raise DezoomerError(
                    f"the server {host} ignores HTTP Range requests, so {url} cannot be read piece by piece",
                    hint="Download the .zif file itself (e.g. curl -O URL, or your browser) and give its local "
                         "path instead of the URL: it is read from disk the same way.") from None
            raise

    @staticmethod
    def _sniff(ctx: Context, url: str) -> None:
        """WrongDezoomer unless the first bytes at ``url`` (the read :class:`_Tiff` starts with) are a TIFF's."""
        try:
            head = ctx.get(with_range(url, 0, HEAD_BYTES - 1))
        except FetchError as exc:
            why = "it ignores HTTP Range requests" if exc.status == 200 else str(exc)
            raise WrongDezoomer(f"not read as a ZIF: {why}") from None
        if head[:4] not in TIFF_MAGIC:
            raise WrongDezoomer(f"not a ZIF: it starts with {head[:8]!r}, not a TIFF header")

    def _images(self, ctx: Context, url: str) -> list[Image]:
        tiff = _Tiff(_File(ctx, url))
        chain = tiff.chain()
        plans: list[_Plan] = []
        skipped: list[str] = []
        #: the size of every IFD, skipped ones too (a level after a skipped one still belongs to its image)
        sizes = [(tiff.scalar(e, WIDTH, 0) or 0, tiff.scalar(e, HEIGHT, 0) or 0) for e in chain]
        for k, entries in enumerate(chain):
            got = _plan(tiff, k, entries)
            if isinstance(got, _Plan):
                plans.append(got)
            else:
                skipped.append(got)
        if not plans:
            raise MetadataError("no readable tiled level in this ZIF: " + "; ".join(skipped), hint=_HINT_FILE)
        for reason in skipped:
            log.info("zif: skipping %s", reason)
        total = sum(p.n for p in plans)
        if total > MAX_TILES_TOTAL:
            raise MetadataError(f"this ZIF declares {total} tiles, over the sanity cap of {MAX_TILES_TOTAL}")
        spans = []
        for p in plans:
            for e, n in ((p.offsets, p.n), (p.counts, p.n)):
                if e.inline is None:
                    spans.append((e.offset, n * _TYPE_SIZES[e.type]))
            if p.tables is not None and p.tables.inline is None:
                spans.append((p.tables.offset, p.tables.nbytes))
        tiff.f.prefetch(spans)
        groups: list[list[ZifLevel]] = []
        for p in plans:
            tables = b""
            if p.tables is not None:
                e = p.tables
                tables = e.inline if e.inline is not None else tiff.f.read(e.offset, e.nbytes)
            level = ZifLevel(
                p.width, p.height, p.tw, p.th, name="ZIF", source=url,
                offsets=tiff.ints(p.offsets, p.n).astype("<u8").tobytes(),
                counts=tiff.ints(p.counts, p.n).astype("<u8").tobytes(),
                jpeg_tables=tables, rgb_jpeg=p.rgb)
            if groups and p.index > 0 and _halves(sizes[p.index - 1], sizes[p.index]) and len(groups[-1]) < MAX_LEVELS:
                groups[-1].append(level)
            else:
                groups.append([level])
        name = urlsplit(url).path if url.startswith(("http://", "https://")) else url  # a script: its name
        stem = zif_title(url) or os.path.basename(name) or None
        return [
            Image(levels=tuple(g), title=stem if len(groups) == 1 or stem is None else f"{stem} {i + 1}",
                  dezoomer=self.name, url=url)
            for i, g in enumerate(groups)
        ]
