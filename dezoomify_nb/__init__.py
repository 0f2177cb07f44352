"""dezoomify_nb: download zoomable (tiled) images to files or lazy dask arrays.

>>> import dezoomify_nb as dz
>>> img = dz.open("https://example.org/iiif/abc/info.json")   # doctest: +SKIP
>>> img.levels[0].width, img.to_dask()[:512, :512].compute()   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import display as _display
from ._version import __version__
from .errors import (
    BrowserError,
    CacheError,
    DezoomerError,
    DezoomifyError,
    DownloadCancelled,
    DownloadError,
    FetchError,
    ImageTooLargeError,
    LevelSelectionError,
    MemoryBudgetError,
    MetadataError,
    NoDezoomerFound,
    TileFetchError,
    UnsupportedFormatError,
    WriterError,
)
from .model import Image, ImageRef, Level
from .net import NetConfig

if TYPE_CHECKING:
    from .api import SaveResult, ZoomableImage, open, open_all, repair
    from .collection import CollectionImage, ImageCollection
    from .registry import list_dezoomers

#: imported on first use (PEP 562), so ``dezoomify-nb --help`` does not pay for zarr and dask
_LAZY = {"SaveResult": "api", "ZoomableImage": "api", "open": "api", "open_all": "api",
         "CollectionImage": "collection", "ImageCollection": "collection", "list_dezoomers": "registry",
         "repair": "api"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dezoomify_nb' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    from . import widgets


def widget(url: str | None = None, **options: Any) -> widgets.ImagePicker:
    """The notebook picker: URL box, image and level choice, thumbnail, deep-zoom viewer with region
    selection, Download/Cancel, progress bar. See :func:`dezoomify_nb.widgets.widget`."""
    from .widgets import widget as make

    return make(url, **options)


def _picker_for(image: Any) -> widgets.ImagePicker:
    """The picker of an image or collection shown in a kernel (the rich display of :mod:`.display`)."""
    from .widgets import widget as make

    return make(image=image)


# The package root sits above every layer: it hands the notebook face's picker to the door's rich display
# (which may not import the widgets itself; see dezoomify_nb/display.py). Nothing is imported until shown.
_display.register_picker(_picker_for)


__all__ = [
    "BrowserError",
    "CacheError",
    "CollectionImage",
    "DezoomerError",
    "DezoomifyError",
    "DownloadCancelled",
    "DownloadError",
    "FetchError",
    "Image",
    "ImageCollection",
    "ImageRef",
    "ImageTooLargeError",
    "Level",
    "LevelSelectionError",
    "MemoryBudgetError",
    "MetadataError",
    "NetConfig",
    "NoDezoomerFound",
    "SaveResult",
    "TileFetchError",
    "UnsupportedFormatError",
    "WriterError",
    "ZoomableImage",
    "__version__",
    "list_dezoomers",
    "open",
    "open_all",
    "repair",
    "widget",
]
