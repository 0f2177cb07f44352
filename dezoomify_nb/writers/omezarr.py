"""OME-Zarr 0.5 (NGFF): a zarr 3 multiscale group with ``(c, y, x)`` arrays, one per level.

Readable by ome-zarr-py (``ome_zarr.reader.Reader``) and so by napari (``napari --plugin napari-ome-zarr``),
and by any zarr 3 library. Layout::

    out.ome.zarr/zarr.json          group; attributes.ome = {version: "0.5", multiscales, omero}
    out.ome.zarr/0/zarr.json        level 0, shape (C, H, W), chunks (C, 512, 512), zstd
    out.ome.zarr/0/c/0/0/0 …        chunks
    out.ome.zarr/1/ …               ceil(H/2) × ceil(W/2), and so on down to one chunk

Streamed: one band of 512 rows is transposed and written at a time (zarr encodes the chunks on its
threads while the next tile rows download). The ``omero`` block gives RGB display colours (red, green,
blue; window 0–255) so viewers show colour, not three grey channels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import WriterError
from .base import StripSource, Writer, atomic_directory, pyramid_of
from .pyramid import bands, close_pyramid

CHUNK = 512
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


def ome_metadata(name: str, sizes: list[tuple[int, int]], channels: int) -> dict:
    """The ``attributes.ome`` block of an NGFF 0.5 image with these level sizes (``(w, h)``, largest first)."""
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
            "type": "2x2 mean",
        }],
        "omero": {"name": name, "version": NGFF_VERSION, "channels": omero_channels,
                  "rdefs": {"model": "color" if rgb else "greyscale", "defaultZ": 0, "defaultT": 0}},
    }


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
        return 4 * CHUNK * width * channels  # band, its transposed copy, strips fetched ahead

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
                group = zarr.open_group(store=str(tmp), mode="w", zarr_format=3)
                for i, level in enumerate(levels):
                    arr = group.create_array(
                        str(i), shape=(c, level.height, level.width), dtype="uint8",
                        chunks=(c, CHUNK, CHUNK), compressors=compressors, fill_value=0,
                        dimension_names=["c", "y", "x"],
                    )
                    y = 0
                    for band in bands(iter(level.strips()), CHUNK):
                        h = band.shape[0]
                        arr[:, y : y + h, :] = np.moveaxis(band, 2, 0)
                        y += h
                    if y != level.height:
                        raise WriterError(f"level {i}: got {y} rows instead of {level.height}")
                group.attrs["ome"] = ome_metadata(name, [(lv.width, lv.height) for lv in levels], c)
        finally:
            close_pyramid(levels)
