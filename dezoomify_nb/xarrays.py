"""Levels as ``xarray`` objects: a ``DataArray`` ``(y, x, band)`` on the lazy dask array, a ``DataTree`` of levels.

Coordinates are the pixel centres in the map's CRS for a map source (from the level's geotransform:
``x = c + a·(i + ½)``, ``y = f + e·(j + ½)``), pixel indices otherwise. With ``rioxarray`` installed the CRS,
the geotransform (and the ground control points of a IIIF georeferenced image) are written the way rioxarray
and GDAL read them (``spatial_ref``). ``xarray`` and ``rioxarray`` are optional (``pip install
dezoomify_nb[maps]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import DezoomifyError

if TYPE_CHECKING:
    import dask.array

    from .lazy.store import OnError
    from .model import GeoRef, Level


class Arrayed(Protocol):
    """What these functions read of an image (a :class:`~dezoomify_nb.zoomable.ZoomableImage`): a Protocol,
    not the class, since ``ZoomableImage.to_xarray`` calls this module (naming the class here, even for the
    type checker alone, would tie the two modules in a circle)."""

    @property
    def levels(self) -> Sequence[Level]: ...
    @property
    def title(self) -> str | None: ...
    @property
    def url(self) -> str: ...
    @property
    def dezoomer(self) -> str: ...
    @property
    def mode(self) -> str: ...
    def georef_of(self, level: int) -> GeoRef | None: ...
    def transform_of(self, level: int) -> tuple[float, float, float, float, float, float] | None: ...
    def to_dask(self, level: int = 0, *, chunks: Any = "auto", on_error: OnError = "raise") -> dask.array.Array: ...


def _xarray():
    try:
        import xarray
    except ImportError:
        raise DezoomifyError("to_xarray needs xarray, which is not installed",
                             hint="pip install 'dezoomify_nb[maps]' (xarray, rioxarray, pyproj)") from None
    return xarray


def _rioxarray() -> bool:
    try:
        import rioxarray  # noqa: F401 - registers the .rio accessor
    except ImportError:
        return False
    return True


def coordinates(image: Arrayed, level: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: the pixel-centre coordinates of level ``level`` (CRS units for maps, else pixel indices)."""
    lv = image.levels[level]
    transform = image.transform_of(level)
    cols, rows = np.arange(lv.width, dtype=np.float64), np.arange(lv.height, dtype=np.float64)
    if transform is None:
        return cols, rows
    c, a, _, f, _, e = transform
    return c + a * (cols + 0.5), f + e * (rows + 0.5)


def to_xarray(image: Arrayed, level: int = 0, *, chunks: Any = "auto", on_error: OnError = "raise") -> Any:
    """Level ``level`` of ``image`` as an ``xarray.DataArray`` (see the module doc)."""
    xr = _xarray()
    data = image.to_dask(level, chunks=chunks, on_error=on_error)
    x, y = coordinates(image, level)
    georef = image.georef_of(level)
    lv = image.levels[level]
    mapped = georef is not None and georef.transform is not None
    unit = "CRS units" if mapped else "pixels"
    attrs: dict[str, Any] = {"title": image.title or "", "source_url": image.url, "dezoomer": image.dezoomer,
                             "level": level, "level_width": lv.width, "level_height": lv.height}
    if georef is not None:
        attrs["crs"] = georef.crs
        if georef.transform is not None:
            attrs["transform"] = list(georef.transform)
    arr = xr.DataArray(
        data, dims=("y", "x", "band"), name=image.title or "image", attrs=attrs,
        coords={"y": ("y", y, {"long_name": "y (pixel centre)", "units": unit}),
                "x": ("x", x, {"long_name": "x (pixel centre)", "units": unit}),
                "band": ("band", list(image.mode))},
    )
    if georef is not None and _rioxarray():
        arr = arr.rio.set_spatial_dims(x_dim="x", y_dim="y").rio.write_crs(georef.crs)
        if georef.transform is not None:
            from affine import Affine

            arr = arr.rio.write_transform(Affine.from_gdal(*georef.transform))
        elif georef.gcps:
            from rasterio.control import GroundControlPoint

            gcps = [GroundControlPoint(row=row, col=col, x=gx, y=gy) for col, row, gx, gy in georef.gcps]
            arr = arr.rio.write_gcps(gcps, georef.crs)
    return arr


def to_datatree(image: Arrayed, *, chunks: Any = "auto", on_error: OnError = "raise") -> Any:
    """Every level of ``image`` as an ``xarray.DataTree``: node ``level_<i>`` holds the variable ``image``."""
    xr = _xarray()
    nodes: dict[str, Any] = {"/": xr.Dataset(attrs={"title": image.title or "", "source_url": image.url,
                                                     "dezoomer": image.dezoomer, "levels": len(image.levels)})}
    for i in range(len(image.levels)):
        arr = to_xarray(image, i, chunks=chunks, on_error=on_error)
        nodes[f"level_{i}"] = arr.rename("image").to_dataset(promote_attrs=False).assign_attrs(arr.attrs)
    return xr.DataTree.from_dict(nodes)
