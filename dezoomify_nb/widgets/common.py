"""Small helpers of the picker: output formats, free file names, header lines."""

from __future__ import annotations

import re
from pathlib import Path

from ..writers import naming

#: (label, save(format=...), extension)
FORMATS: tuple[tuple[str, str, str], ...] = (
    ("from the file name", "", ""),
    ("PNG", "png", ".png"),
    ("JPEG", "jpeg", ".jpg"),
    ("TIFF pyramid", "tiff", ".tif"),
    ("IIIF folder + viewer", "iiif", ".iiif"),
    ("OME-Zarr folder", "ome-zarr", ".zarr"),
)
EXTENSIONS = {name: ext for _, name, ext in FORMATS if name}


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_headers(text: str) -> list[str]:
    """``Name: value`` lines of the headers box (blank lines and ``#`` comments skipped); a line that is
    not a header raises ValueError saying so."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    for line in lines:
        name, sep, _ = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name.strip()):
            raise ValueError(f"The header line {line!r} is not of the form 'Name: value' (e.g. 'Referer: https://…').")
    return lines


def free_name(directory: Path, title: str | None, size: tuple[int, int], fmt: str = "") -> str:
    """The default output name for ``title`` at ``size`` (extension of ``fmt`` if given, else JPEG or PNG
    by size), with ``_0001``, ``_0002``… added while that name exists in ``directory``."""
    path = naming.output_path(None, title=title, width=size[0], height=size[1])
    ext = EXTENSIONS.get(fmt)
    stem = path.name.removesuffix(path.suffix)
    suffix = ext or path.suffix
    candidate, n = f"{stem}{suffix}", 0
    while (directory / candidate).exists():
        n += 1
        candidate = f"{stem}_{n:04d}{suffix}"
    return candidate
