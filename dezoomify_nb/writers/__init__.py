"""Output writers, chosen by the output file's extension.

========================  ===========================================================
extension                 writer
========================  ===========================================================
``.png``                  :class:`~.png.PNGWriter` — streamed, any size, little memory
``.jpg`` ``.jpeg``        :class:`~.pillow.JPEGWriter` — ≤ 65,500 px a side, in memory
``.tif`` ``.tiff``        :class:`~.tiff.TIFFWriter` — tiled BigTIFF pyramid, streamed
``.iiif``                 :class:`~.iiif.IIIFWriter` — static IIIF tile folder + viewer
``.zarr`` ``.ome.zarr``   :class:`~.omezarr.OMEZarrWriter` — OME-Zarr 0.5 folder
plugins                   entry-point group ``dezoomify_nb.writers`` (may override below)
``.webp`` ``.bmp`` …      :class:`~.pillow.PillowWriter` — any format Pillow saves
========================  ===========================================================

Built-in writers are rows of :data:`BUILTIN` (name, ``module:Class``, suffixes): a new writer is one
module and one row. :func:`writer_named` picks one by name (``format=`` of ``save``, ``--format``).

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
from .atomic import Output
from .base import ArraySource, StripSource, Writer
from .naming import choose, default_extension, output_path, sanitize_title

__all__ = [
    "ArraySource",
    "Output",
    "StripSource",
    "Writer",
    "choose",
    "default_extension",
    "output_path",
    "plugin_writers",
    "sanitize_title",
    "supported_extensions",
    "writer_for",
    "writer_named",
    "writer_names",
]

ENTRY_POINT_GROUP = "dezoomify_nb.writers"

#: Built-in writers: (name, "module:Class", suffixes). Suffixes here win over plugins and Pillow.
BUILTIN: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("png", "png:PNGWriter", (".png",)),
    ("jpeg", "pillow:JPEGWriter", (".jpg", ".jpeg")),
    ("tiff", "tiff:TIFFWriter", (".tif", ".tiff")),
    ("tiff-jpeg", "tiff:TIFFJPEGWriter", ()),
    ("iiif", "iiif:IIIFWriter", (".iiif",)),
    ("ome-zarr", "omezarr:OMEZarrWriter", (".zarr", ".ome.zarr")),
)
_ALIASES = {"jpg": "jpeg", "tif": "tiff", "zarr": "ome-zarr", "omezarr": "ome-zarr", "ome.zarr": "ome-zarr"}


def _builtin(spec: str) -> Writer:
    import importlib

    module, cls = spec.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)()


def writer_names() -> list[str]:
    """Names :func:`writer_named` accepts (built-in writers; Pillow formats by their extension)."""
    return [name for name, _, _ in BUILTIN]


def writer_named(name: str) -> Writer:
    """The writer called ``name`` (``"tiff"``, ``"iiif"``, ``"ome-zarr"``, ``"png"``, ``"jpeg"``,
    ``"tiff-jpeg"``…), else the writer for the extension ``name`` (``"webp"``)."""
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    for row_name, spec, _ in BUILTIN:
        if row_name == key:
            return _builtin(spec)
    try:
        return writer_for(key)
    except UnsupportedFormatError:
        raise UnsupportedFormatError(f"Unknown output format {name!r}",
                                     hint=f"Use one of {', '.join(writer_names())}, or an extension such as webp.") from None


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
    return sorted({*(x for _, _, sfx in BUILTIN for x in sfx), *plugin_writers(), *_pillow_formats()})


def writer_for(path_or_suffix: str | os.PathLike) -> Writer:
    """The writer for an output path or extension (``"out.tif"``, ``Path("a.PNG")``, ``".jpg"``, ``"webp"``).

    The extension is compared lower-cased. Raises :class:`UnsupportedFormatError` for an unknown
    or missing extension, with the supported ones in its hint.
    """
    suffix = _suffix_of(path_or_suffix)
    for _, spec, suffixes in BUILTIN:
        if suffix in suffixes:
            return _builtin(spec)
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
    common = ".png .jpg .jpeg .tif .tiff .iiif .zarr .ome.zarr .webp .bmp .gif"
    others = " ".join(e for e in supported_extensions() if e not in common.split())
    what = f"extension {suffix!r}" if suffix else f"no extension in {str(path_or_suffix)!r}"
    raise UnsupportedFormatError(
        f"Cannot write images with {what}",
        hint=f"Use one of {common} (also: {others}). .png is streamed and works for any size.")
