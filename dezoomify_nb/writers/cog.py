"""Cloud-Optimized GeoTIFF layout: a tiled pyramid TIFF re-laid out as GDAL's COG driver lays it out.

A COG (GDAL's ``validate_cloud_optimized_geotiff.py`` checks it) has every IFD at the start of the file — the
main image's first, then each overview's, by decreasing size — and the tile data after them, **smallest
overview first and the full-resolution tiles last**, each level's tiles in row-major order. A streamed
writer cannot produce that order directly: the overviews are computed from the full level, which is read
(downloaded) first, and the IFDs hold the offsets and sizes of tiles not compressed yet. So the pyramid is
first written as usual (tifffile, streamed, into an anonymous temporary file beside the output), then
:func:`relayout` copies it: it reads the IFDs (tags kept byte for byte), computes the new layout, writes the
header, GDAL's *ghost area* of structural metadata, the IFDs with the new tile offsets, then the tiles,
copied one at a time. Memory: the tile offset tables only; disk: the temporary (about the output's size)
until the copy ends.

The ghost area declares what GDAL's COG driver writes, and the tiles follow it, so readers that know it
(GDAL) read a tile in one request: ``LAYOUT=IFDS_BEFORE_DATA``, ``BLOCK_ORDER=ROW_MAJOR``,
``BLOCK_LEADER=SIZE_AS_UINT4`` (4 bytes before each tile: its size) and ``BLOCK_TRAILER=LAST_4_BYTES_REPEATED``
(its last 4 bytes again after it). The file is classic TIFF below 4 GiB, BigTIFF above (GDAL's
``BIGTIFF=IF_SAFER``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import WriterError

TILE_OFFSETS, TILE_BYTE_COUNTS = 324, 325
#: bytes per value of each TIFF field type
TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
LONG, LONG8 = 4, 16
#: 64-bit types and the 32-bit type their values are written as in a classic TIFF
NARROW = {16: (4, "Q", "I"), 17: (9, "q", "i"), 18: (13, "Q", "I")}
GHOST_BODY = ("LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n"
              "BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n")
COPY_BYTES = 8 << 20
#: files from this size on are BigTIFF
CLASSIC_LIMIT = 1 << 32


@dataclass
class _Tag:
    code: int
    dtype: int
    count: int
    raw: bytes  # the value as stored, little-endian


@dataclass
class _Page:
    tags: list[_Tag]
    offsets: list[int]  # tiles in the source file
    counts: list[int]


def _read_pages(src: BinaryIO) -> list[_Page]:
    import tifffile

    src.seek(0)
    pages = []
    with tifffile.TiffFile(src) as tf:
        if tf.byteorder != "<":
            raise WriterError("COG layout: the temporary TIFF is not little-endian")
        for page in tf.pages:
            if not page.is_tiled:
                raise WriterError("COG layout: an image of the temporary TIFF is not tiled")
            tags = []
            for tag in page.tags.values():
                if tag.code in (TILE_OFFSETS, TILE_BYTE_COUNTS):
                    continue
                size = TYPE_SIZE[int(tag.dtype)] * tag.count
                src.seek(tag.valueoffset)
                tags.append(_Tag(tag.code, int(tag.dtype), tag.count, src.read(size)))
            pages.append(_Page(tags, [int(v) for v in page.dataoffsets], [int(v) for v in page.databytecounts]))
    return pages


def _narrow(tag: _Tag) -> _Tag:
    """A 64-bit integer tag as its 32-bit type (classic TIFF); its values must fit."""
    if tag.dtype not in NARROW:
        return tag
    dtype, wide, narrow = NARROW[tag.dtype]
    values = struct.unpack(f"<{tag.count}{wide}", tag.raw)
    try:
        return _Tag(tag.code, dtype, tag.count, struct.pack(f"<{tag.count}{narrow}", *values))
    except struct.error:
        raise WriterError(f"COG layout: tag {tag.code} does not fit a classic TIFF") from None


def _ghost(header: int) -> bytes:
    body = GHOST_BODY
    first = f"GDAL_STRUCTURAL_METADATA_SIZE={len(body):06d} bytes\n"
    if (header + len(first) + len(body)) % 2:  # the first IFD starts on a word boundary
        body += " "
        first = f"GDAL_STRUCTURAL_METADATA_SIZE={len(body):06d} bytes\n"
    return (first + body).encode("ascii")


class _Layout:
    """Where everything goes in the output, for classic TIFF (``big=False``) or BigTIFF."""

    def __init__(self, pages: list[_Page], big: bool) -> None:
        self.big = big
        self.header = 16 if big else 8
        self.entry, self.inline = (20, 8) if big else (12, 4)
        self.ghost = _ghost(self.header)
        pos = self.header + len(self.ghost)
        self.tags: list[list[_Tag]] = []
        self.ifds: list[int] = []
        self.values: list[list[int | None]] = []  # per page, per tag: its out-of-line position
        n_tiles = [len(p.offsets) for p in pages]
        off_type = LONG8 if big else LONG
        for page, n in zip(pages, n_tiles, strict=True):
            tags = [t if big else _narrow(t) for t in page.tags]
            # placeholders of the right size; filled once the data positions are known
            tags += [_Tag(TILE_OFFSETS, off_type, n, bytes(TYPE_SIZE[off_type] * n)),
                     _Tag(TILE_BYTE_COUNTS, LONG, n, bytes(4 * n))]
            tags.sort(key=lambda t: t.code)
            self.ifds.append(pos)
            pos += (8 if big else 2) + self.entry * len(tags) + (8 if big else 4)
            where: list[int | None] = []
            for t in tags:
                if len(t.raw) > self.inline:
                    where.append(pos)
                    pos += len(t.raw) + len(t.raw) % 2
                else:
                    where.append(None)
            self.tags.append(tags)
            self.values.append(where)
        # tiles: smallest level first, each with a 4-byte leader and a 4-byte trailer
        self.tile_offsets: list[list[int]] = [[] for _ in pages]
        for k in reversed(range(len(pages))):
            for count in pages[k].counts:
                if count == 0:
                    self.tile_offsets[k].append(0)
                    continue
                self.tile_offsets[k].append(pos + 4)
                pos += count + 8
        self.size = pos
        for k, page in enumerate(pages):
            fmt = "Q" if big else "I"
            for t in self.tags[k]:
                if t.code == TILE_OFFSETS:
                    t.raw = struct.pack(f"<{len(page.offsets)}{fmt}", *self.tile_offsets[k])
                elif t.code == TILE_BYTE_COUNTS:
                    t.raw = struct.pack(f"<{len(page.counts)}I", *page.counts)

    def write_head(self, dst: BinaryIO) -> None:
        if self.big:
            dst.write(b"II" + struct.pack("<HHHQ", 43, 8, 0, self.ifds[0]))
        else:
            dst.write(b"II" + struct.pack("<HI", 42, self.ifds[0]))
        dst.write(self.ghost)
        for k, (tags, where) in enumerate(zip(self.tags, self.values, strict=True)):
            assert dst.tell() == self.ifds[k]
            nxt = self.ifds[k + 1] if k + 1 < len(self.ifds) else 0
            out = [struct.pack("<Q" if self.big else "<H", len(tags))]
            for t, pos in zip(tags, where, strict=True):
                head = struct.pack("<HHQ" if self.big else "<HHI", t.code, t.dtype, t.count)
                value = t.raw.ljust(self.inline, b"\0") if pos is None else struct.pack(
                    "<Q" if self.big else "<I", pos)
                out.append(head + value)
            out.append(struct.pack("<Q" if self.big else "<I", nxt))
            for t, pos in zip(tags, where, strict=True):
                if pos is not None:
                    out.append(t.raw + b"\0" * (len(t.raw) % 2))
            dst.write(b"".join(out))


def relayout(src: BinaryIO, dst: BinaryIO) -> None:
    """Copy the tiled pyramid TIFF ``src`` (main image first, then its reductions, little-endian) to ``dst``
    as a Cloud-Optimized GeoTIFF (see the module's docstring). ``dst`` is written from its current position
    0, sequentially."""
    pages = _read_pages(src)
    if not pages:
        raise WriterError("COG layout: the temporary TIFF has no image")
    layout = _Layout(pages, big=False)
    if layout.size >= CLASSIC_LIMIT:
        layout = _Layout(pages, big=True)
    layout.write_head(dst)
    buf: list[bytes] = []
    held = 0
    for k in reversed(range(len(pages))):
        for off, count in zip(pages[k].offsets, pages[k].counts, strict=True):
            if count == 0:
                continue
            src.seek(off)
            data = src.read(count)
            if len(data) != count:
                raise WriterError("COG layout: the temporary TIFF is short")
            tail = data[-4:].rjust(4, b"\0")
            buf += [struct.pack("<I", count), data, tail]
            held += count + 8
            if held >= COPY_BYTES:
                dst.write(b"".join(buf))
                buf, held = [], 0
    dst.write(b"".join(buf))
    if dst.tell() != layout.size:
        raise WriterError(f"COG layout: wrote {dst.tell()} bytes instead of {layout.size}")
