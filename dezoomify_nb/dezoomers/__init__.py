"""Format parsers. Each module holds one format; :mod:`dezoomify_nb.registry` lists them."""

from .base import Context, Dezoomer

__all__ = ["Context", "Dezoomer"]
