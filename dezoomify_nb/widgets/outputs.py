"""What the picker says of a written output: its size on disk and, when small enough, a preview."""

from __future__ import annotations

import io
from pathlib import Path

#: files over this many pixels get no preview (decoding them would take too long and too much memory)
PREVIEW_MAX_PIXELS = 25_000_000
#: the preview fits this box
PREVIEW_BOX = (240, 144)


def file_bytes(path: Path) -> int:
    """Bytes of a file, or of every file in a folder (IIIF, OME-Zarr)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def file_preview(path: Path) -> bytes | None:
    """A small PNG of a written PNG/JPEG/TIFF file read back from disk, or None (a folder, too large)."""
    from PIL import Image

    if not path.is_file() or path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
        return None
    try:
        with Image.open(path) as im:
            if im.width * im.height > PREVIEW_MAX_PIXELS:
                return None
            im.draft("RGB", PREVIEW_BOX)  # JPEG: decode at a reduced scale
            im = im.convert("RGB")
            im.thumbnail(PREVIEW_BOX, Image.Resampling.BOX)
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            return buf.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
