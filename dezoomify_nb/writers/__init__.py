"""Output writers, chosen by the output file's extension.

========================  ===========================================================
extension                 writer
========================  ===========================================================
``.png``                  :class:`~.png.PNGWriter` — streamed, any size, little memory
``.jpg`` ``.jpeg``        :class:`~.pillow.JPEGWriter` — ≤ 65,500 px a side, in memory
plugins                   entry-point group ``dezoomify_nb.writers`` (may override below)
``.tif`` ``.webp`` …      :class:`~.pillow.PillowWriter` — any format Pillow saves
========================  ===========================================================

Plugins: an entry point ``name = "package.module:WriterClass"`` in the group
``dezoomify_nb.writers``; the class (a :class:`~.base.Writer`) is instantiated without arguments
and registered for each of its ``suffixes``. Plugins are loaded on the first look-up; one that
fails to load gives a :class:`RuntimeWarning`.
"""

from __future__ import annotations

import functools
import os
import warnings
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import UnsupportedFormatError
from .base import ArraySource, StripSource, Writer
from .naming import default_extension, output_path, release, reserve, sanitize_title

__all__ = [
    "ArraySource",
    "StripSource",
    "Writer",
    "default_extension",
    "output_path",
    "plugin_writers",
    "release",
    "reserve",
    "sanitize_title",
    "supported_extensions",
    "writer_for",
]

ENTRY_POINT_GROUP = "dezoomify_nb.writers"


@functools.cache
def _pillow_formats() -> dict[str, str]:
    """Lower-case extension (with dot) → Pillow format name, for every format Pillow can save."""
    from PIL import Image

    from .pillow import UNSAVABLE_FORMATS

    Image.init()
    return {
        ext.lower(): fmt
        for ext, fmt in Image.registered_extensions().items()
        if fmt in Image.SAVE and fmt not in UNSAVABLE_FORMATS
    }


@functools.cache
def plugin_writers() -> dict[str, Writer]:
    """Extension → writer instance from the ``dezoomify_nb.writers`` entry points (loaded once)."""
    found: dict[str, Writer] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            writer = ep.load()()
            suffixes = tuple(writer.suffixes) or (f".{ep.name}",)
        except Exception as exc:  # a broken plugin must not break us
            warnings.warn(f"writer plugin {ep.name!r} failed to load: {exc}", RuntimeWarning, stacklevel=2)
            continue
        for suffix in suffixes:
            found.setdefault(_normalize_suffix(suffix), writer)
    return found


def _normalize_suffix(suffix: str) -> str:
    suffix = suffix.strip().lower()
    return suffix if suffix.startswith(".") else "." + suffix


def _suffix_of(path_or_suffix: str | os.PathLike) -> str:
    if isinstance(path_or_suffix, os.PathLike):
        return Path(path_or_suffix).suffix.lower()
    s = str(path_or_suffix).strip()
    if "/" not in s and os.sep not in s:
        if s.startswith(".") and s.count(".") == 1:
            return s.lower()  # ".png"
        if "." not in s:
            return ("." + s).lower() if s else ""  # "png"
    return Path(s).suffix.lower()


def supported_extensions() -> list[str]:
    """Every extension :func:`writer_for` accepts, sorted (``.jpg``, ``.png``, ``.tif``…)."""
    return sorted({".png", ".jpg", ".jpeg", *plugin_writers(), *_pillow_formats()})


def writer_for(path_or_suffix: str | os.PathLike) -> Writer:
    """The writer for an output path or extension (``"out.tif"``, ``Path("a.PNG")``, ``".jpg"``, ``"webp"``).

    The extension is compared lower-cased. Raises :class:`UnsupportedFormatError` for an unknown
    or missing extension, with the supported ones in its hint.
    """
    suffix = _suffix_of(path_or_suffix)
    if suffix == ".png":
        from .png import PNGWriter

        return PNGWriter()
    if suffix in (".jpg", ".jpeg"):
        from .pillow import JPEGWriter

        return JPEGWriter()
    if suffix:
        plugin = plugin_writers().get(suffix)
        if plugin is not None:
            return plugin
        fmt = _pillow_formats().get(suffix)
        if fmt == "JPEG":
            from .pillow import JPEGWriter

            writer = JPEGWriter()
            writer.suffixes = (suffix,)
            return writer
        if fmt is not None:
            from .pillow import PillowWriter

            return PillowWriter(fmt, (suffix,))
    common = ".png .jpg .jpeg .tif .tiff .webp .bmp .gif"
    others = " ".join(e for e in supported_extensions() if e not in common.split())
    what = f"extension {suffix!r}" if suffix else f"no extension in {str(path_or_suffix)!r}"
    raise UnsupportedFormatError(
        f"Cannot write images with {what}",
        hint=f"Use one of {common} (also: {others}). .png is streamed and works for any size.")
