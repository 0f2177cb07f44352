"""OME-Zarr 0.5 (NGFF): a zarr 3 multiscale group with ``(c, y, x)`` arrays, one per level.

Readable by ome-zarr-py (``ome_zarr.reader.Reader``) and so by napari (``napari --plugin napari-ome-zarr``),
and by any zarr 3 library. Layout::

    out.ome.zarr/zarr.json          group; attributes.ome = {version: "0.5", multiscales, omero}
    out.ome.zarr/0/zarr.json        level 0, shape (C, H, W), chunks (C, 512, 512), zstd
    out.ome.zarr/0/c/0/0/0 …        chunks
    out.ome.zarr/1/ …               ceil(H/2) × ceil(W/2), and so on down to one chunk

How chunks are written: zarr creates the group and the arrays (so every ``zarr.json`` is what zarr
writes), but the chunks are written **directly**: each level is cut into contiguous 512×512 tiles
(:func:`~.pyramid.tile_grid`, edge tiles zero-padded to the full chunk, as zarr stores them), and
:data:`WORKERS` threads transpose each tile to ``(C, 512, 512)``, encode it with the codec the array
declares (``bytes`` then optionally ``zstd``, through the same numcodecs ``Zstd`` zarr calls) and write it
at the key the array's chunk key encoding gives. An all-zero chunk (the fill value) is skipped, as zarr
does by default (``array.write_empty_chunks``). Why: zarr's own ``arr[...] = band`` costs ~2 ms of Python
per chunk plus a strided transpose of the whole band, on one core; zstd (which releases the GIL) runs
at over 1 GB/s. At most :data:`PENDING_BYTES` of chunks wait for the workers, so encoding and writing
overlap the download in bounded memory. Should an array's codecs be anything else (a zarr config that
adds filters, say), the same threads write each chunk through zarr instead: slower, still correct.

The ``omero`` block gives RGB display colours (red, green, blue; window 0–255) so viewers show colour,
not three grey channels.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import WriterError
from .base import StripSource, Writer, atomic_directory
from .pyramid import close_pyramid, pyramid_of, tile_grid

CHUNK = 512
#: threads that transpose, encode and write chunks (the calling thread cuts tiles and downloads)
WORKERS = 2
#: bytes of cut chunks that may wait for the workers (at least 2 chunks per worker)
PENDING_BYTES = 16 << 20

NGFF_VERSION = "0.5"
CHANNELS = {
    1: [("gray", "FFFFFF")],
    2: [("gray", "FFFFFF"), ("alpha", "FFFFFF")],
    3: [("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF")],
    4: [("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"), ("alpha", "FFFFFF")],
}


def zstd_level(compression: int) -> int:
    """``--compression`` 0–100 → zstd level (0 = no compression): 1–19 → 1, 20–60 → 3, > 60 → 9."""
    if compression <= 0:
        return 0
    return 1 if compression < 20 else 3 if compression <= 60 else 9


def downscaling(levels) -> str:
    """The multiscales ``type``: how the levels below the first were made — the server's own levels
    (copied), 2×2 box means computed here, or the server's levels and then means below them."""
    from .pyramid import ComputedLevel

    computed = [isinstance(lv, ComputedLevel) for lv in levels[1:]]
    if computed and not any(computed):
        return "server levels"
    if any(computed) and not all(computed):
        return "server levels, then 2x2 mean"
    return "2x2 mean"


def ome_metadata(name: str, sizes: list[tuple[int, int]], channels: int, method: str = "2x2 mean") -> dict:
    """The ``attributes.ome`` block of an NGFF 0.5 image with these level sizes (``(w, h)``, largest first);
    ``method`` (:func:`downscaling`) says how the lower levels were made."""
    w0, h0 = sizes[0]
    datasets = [
        {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [1.0, h0 / h, w0 / w]}]}
        for i, (w, h) in enumerate(sizes)
    ]
    rgb = channels >= 3
    omero_channels = [
        {"label": label, "color": color, "active": label != "alpha", "coefficient": 1.0, "family": "linear",
         "inverted": False, "window": {"start": 0, "end": 255, "min": 0, "max": 255}}
        for label, color in CHANNELS[channels]
    ]
    return {
        "version": NGFF_VERSION,
        "multiscales": [{
            "name": name,
            "axes": [{"name": "c", "type": "channel"},
                     {"name": "y", "type": "space"},
                     {"name": "x", "type": "space"}],
            "datasets": datasets,
            "type": method,
        }],
        "omero": {"name": name, "version": NGFF_VERSION, "channels": omero_channels,
                  "rdefs": {"model": "color" if rgb else "greyscale", "defaultZ": 0, "defaultT": 0}},
    }


def chunk_encoder(arr) -> Callable[[np.ndarray], object] | None:
    """``(C, 512, 512)`` C-order chunk → the bytes zarr stores for ``arr``, if its codecs are ``bytes``
    [+ ``zstd``] on regular ``(C, 512, 512)`` chunks; else None (write through zarr)."""
    import numcodecs
    from zarr.codecs import BytesCodec, ZstdCodec

    meta = arr.metadata
    codecs = tuple(meta.codecs)
    if (arr.dtype != np.uint8 or arr.chunks != (arr.shape[0], CHUNK, CHUNK) or meta.fill_value != 0
            or getattr(meta, "storage_transformers", ()) or not 1 <= len(codecs) <= 2
            or type(codecs[0]) is not BytesCodec):  # one byte a sample: its endianness does not matter
        return None
    if len(codecs) == 1:
        return lambda chunk: chunk  # written as is (a C-contiguous array is a bytes-like object)
    if type(codecs[1]) is not ZstdCodec:
        return None
    return numcodecs.Zstd(level=codecs[1].level, checksum=codecs[1].checksum).encode  # what ZstdCodec runs


def checked_strips(level: StripSource, i: int) -> Iterator[np.ndarray]:
    """``level.strips()`` as ``(h, width, channels)`` uint8 arrays; raises unless they add up to its height."""
    y = 0
    for strip in level.strips():
        a = np.asarray(strip)
        a = a[:, :, None] if a.ndim == 2 else a
        if a.dtype != np.uint8 or a.shape[1:] != (level.width, level.channels):
            raise WriterError(f"level {i}: strip {a.shape} {a.dtype} is not (h, {level.width}, {level.channels}) uint8")
        y += a.shape[0]
        if y > level.height:
            break
        yield a
    if y != level.height:
        raise WriterError(f"level {i}: got {y} rows instead of {level.height}")


class OMEZarrWriter(Writer):
    """OME-Zarr 0.5 multiscale image (a folder)."""

    name = "ome-zarr"
    suffixes = (".zarr", ".ome.zarr")
    pyramid = True
    directory = True

    def check(self, width: int, height: int, channels: int) -> None:
        if channels not in CHANNELS:
            raise WriterError(f"OME-Zarr: cannot write {channels} channels per pixel")
        if width < 1 or height < 1:
            raise WriterError(f"cannot write an empty image ({width}×{height} px)")

    def memory_estimate(self, width: int, height: int, channels: int) -> int:
        # a tile row being cut (its strips), strips fetched ahead, queued chunks, each worker's chunk
        # transposed and encoded
        chunk = CHUNK * CHUNK * channels
        return 3 * CHUNK * width * channels + max(PENDING_BYTES, 2 * WORKERS * chunk) + 2 * WORKERS * chunk

    def write(self, path: Path, source: StripSource, *, compression: int = 5) -> None:
        import zarr
        from zarr.codecs import ZstdCodec

        c = source.channels
        self.check(source.width, source.height, c)
        levels = pyramid_of(source, CHUNK)
        level_z = zstd_level(compression)
        compressors = [ZstdCodec(level=level_z)] if level_z else None
        name = Path(path).name.removesuffix(".zarr").removesuffix(".ome") or "image"
        try:
            with atomic_directory(Path(path)) as tmp:
                group = zarr.open_group(store=str(tmp), mode="w-", zarr_format=3)  # "w" would delete and remake tmp
                pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="omezarr")
                try:
                    for i, level in enumerate(levels):
                        arr = group.create_array(
                            str(i), shape=(c, level.height, level.width), dtype="uint8",
                            chunks=(c, CHUNK, CHUNK), compressors=compressors, fill_value=0,
                            dimension_names=["c", "y", "x"],
                        )
                        self._write_chunks(pool, arr, tmp / arr.path, level, i)
                finally:
                    pool.shutdown(wait=True, cancel_futures=True)  # before a failed output is removed
                group.attrs["ome"] = ome_metadata(name, [(lv.width, lv.height) for lv in levels], c,
                                                  downscaling(levels))
        finally:
            close_pyramid(levels)

    @staticmethod
    def _write_chunks(pool: ThreadPoolExecutor, arr, folder: Path, level: StripSource, i: int) -> None:
        """Cut ``level`` into chunks; ``pool`` encodes and writes them (at most PENDING_BYTES queued)."""
        import zarr

        encode = chunk_encoder(arr)
        skip_empty = not zarr.config.get("array.write_empty_chunks", False)
        cols = -(-level.width // CHUNK)
        pending: deque[Future] = deque()
        most = max(2 * WORKERS, PENDING_BYTES // (CHUNK * CHUNK * level.channels))
        made: set[Path] = set()

        def put(tile: np.ndarray, r: int, col: int, file: Path) -> None:
            if skip_empty and not tile.any():
                return
            chunk = np.ascontiguousarray(np.moveaxis(tile, 2, 0))
            if encode is None:
                y, x = r * CHUNK, col * CHUNK
                h, w = min(CHUNK, level.height - y), min(CHUNK, level.width - x)
                arr[:, y : y + h, x : x + w] = chunk[:, :h, :w]
                return
            data = encode(chunk)
            if file.parent not in made:  # (this pool is shut down before a failed output is removed)
                file.parent.mkdir(parents=True, exist_ok=True)
                made.add(file.parent)
            with open(file, "wb") as f:
                f.write(data)

        for n, tile in enumerate(tile_grid(checked_strips(level, i), level.width, CHUNK, pad=True)):
            r, col = divmod(n, cols)
            file = folder / arr.metadata.encode_chunk_key((0, r, col))
            pending.append(pool.submit(put, tile, r, col, file))
            while len(pending) > most:
                pending.popleft().result()  # a worker's error is raised here
        while pending:
            pending.popleft().result()
