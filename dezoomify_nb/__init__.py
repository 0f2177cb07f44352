"""dezoomify_nb: download zoomable (tiled) images to files or lazy dask arrays.

>>> import dezoomify_nb as dz
>>> img = dz.open("https://example.org/iiif/abc/info.json")   # doctest: +SKIP
>>> img.levels[0].width, img.to_dask()[:512, :512].compute()   # doctest: +SKIP
"""

from ._version import __version__
from .api import SaveResult, ZoomableImage, open, open_all
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
from .model import Image, Level
from .net import NetConfig
from .registry import list_dezoomers

__all__ = [
    "CacheError",
    "DezoomerError",
    "DezoomifyError",
    "DownloadError",
    "FetchError",
    "Image",
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
