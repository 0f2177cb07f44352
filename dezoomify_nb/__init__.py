"""dezoomify_nb: download zoomable (tiled) images to files or lazy dask arrays.

>>> import dezoomify_nb as dz
>>> img = dz.open("https://example.org/iiif/abc/info.json")   # doctest: +SKIP
>>> img.levels[0].width, img.to_dask()[:512, :512].compute()   # doctest: +SKIP
"""

from ._version import __version__
from .api import SaveResult, ZoomableImage, open, open_all
from .collection import CollectionImage, ImageCollection
from .errors import (
    CacheError,
    DezoomerError,
    DezoomifyError,
    DownloadError,
    FetchError,
    ImageTooLargeError,
    LevelSelectionError,
    MetadataError,
    NoDezoomerFound,
    TileFetchError,
    UnsupportedFormatError,
    WriterError,
)
from .model import Image, ImageRef, Level
from .net import NetConfig
from .registry import list_dezoomers

__all__ = [
    "CacheError",
    "CollectionImage",
    "DezoomerError",
    "DezoomifyError",
    "DownloadError",
    "FetchError",
    "Image",
    "ImageCollection",
    "ImageRef",
    "ImageTooLargeError",
    "Level",
    "LevelSelectionError",
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
]
