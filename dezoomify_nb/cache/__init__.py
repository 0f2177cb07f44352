"""The resumable tile cache (a zarr Store of encoded tiles and metadata pages)."""

from .tilecache import TileCache, source_key

__all__ = ["TileCache", "source_key"]
