"""The image formats a server may send us, and the one way to open them.

Tiles, previews and probes come from servers we do not trust. Pillow knows ~40 formats and some of them
run programs (EPS hands the data to Ghostscript found on ``PATH``) or carry large attack surfaces nobody
needs for a zoomable image. Only the formats that exist in the field are decoded: JPEG, PNG, WebP, GIF,
TIFF, BMP, and AVIF when Pillow has its (libavif) decoder. JPEG XL is not decoded (Pillow has no decoder
of its own). Bytes are recognised by their magic numbers first (:func:`sniff`) and only then handed to
Pillow, with ``formats=`` restricted to the format that was recognised, so no other plugin ever sees them.

Anything else is refused with :class:`NotAnImage`, worded after what it looks like, e.g.
``not an allowed image format (looks like PostScript)``.
"""

from __future__ import annotations

import io
from functools import cache

from PIL import Image, UnidentifiedImageError, features

#: Pillow format names decoded whatever the install (AVIF is added by :func:`allowed_formats`)
BASE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP")


class NotAnImage(ValueError):
    """Bytes that are not an image of an allowed format, or not a readable one."""


@cache
def allowed_formats() -> tuple[str, ...]:
    """The Pillow format names that are decoded here (AVIF only with Pillow's own libavif decoder)."""
    extra = ("AVIF",) if "avif" in features.modules and features.check_module("avif") else ()  # Pillow >= 11.2
    return BASE_FORMATS + extra


def allowed_names() -> str:
    """The allowed formats for messages: ``"JPEG, PNG, WebP, GIF, TIFF, BMP or AVIF"``."""
    names = [{"WEBP": "WebP"}.get(f, f) for f in allowed_formats()]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _is_avif(head: bytes) -> bool:
    """An ISO-BMFF ``ftyp`` box whose brands name AVIF (``avif``/``avis``)."""
    if head[4:8] != b"ftyp":
        return False
    size = int.from_bytes(head[:4], "big")
    brands = head[8 : min(max(size, 16), 64)]
    return any(brands[i : i + 4] in (b"avif", b"avis") for i in range(0, len(brands) - 3, 4))


def sniff(data: bytes) -> str | None:
    """The allowed Pillow format ``data`` starts like, from its magic number; None for anything else."""
    head = bytes(data[:64])
    if head[:3] == b"\xff\xd8\xff":
        fmt = "JPEG"
    elif head[:8] == b"\x89PNG\r\n\x1a\n":
        fmt = "PNG"
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        fmt = "WEBP"
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        fmt = "GIF"
    elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        fmt = "TIFF"
    elif head[:2] == b"BM" and len(head) >= 26:
        fmt = "BMP"
    elif _is_avif(head):
        fmt = "AVIF"
    else:
        return None
    return fmt if fmt in allowed_formats() else None


#: (magic prefix, name) of common things that are not allowed images, for the refusal's wording
_LOOKS_LIKE: tuple[tuple[bytes, str], ...] = (
    (b"%!PS", "PostScript"),
    (b"\xc5\xd0\xd3\xc6", "PostScript"),  # DOS EPS binary header
    (b"%PDF", "PDF"),
    (b"8BPS", "Photoshop PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xffO\xffQ", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\x00\x00\x01\xb3", "MPEG"),
    (b"\x00\x00\x01\xba", "MPEG"),
    (b"/* XPM */", "XPM"),
    (b"#define", "XBM"),
    (b"qoif", "QOI"),
    (b"DDS ", "DDS"),
    (b"SIMPLE  =", "FITS"),
    (b"\x1f\x8b", "gzip data"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x01\xda", "SGI"),
    (b"\x59\xa6\x6a\x95", "Sun raster"),
    (b"icns", "ICNS"),
)


def looks_like(data: bytes) -> str:
    """A short description of what ``data`` seems to be (for error messages)."""
    head = bytes(data[:512])
    if not head:
        return "empty"
    for magic, name in _LOOKS_LIKE:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        return f"ISO media ({head[8:12].decode('latin-1').strip() or '?'})"
    if head[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6", b"P7") and head[2:3].isspace():
        return "PNM"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text[:512]:
        return "SVG"
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:256]:
        return "HTML"
    if text.startswith(b"<"):
        return "XML"
    if text.startswith((b"{", b"[")):
        return "JSON"
    if all(32 <= c < 127 or c in b"\t\r\n" for c in head):
        return "text"
    return f"unknown data starting {head[:8].hex(' ')}"


def check(data: bytes) -> str:
    """The allowed format of ``data`` (see :func:`sniff`), or :class:`NotAnImage` saying what it looks like."""
    fmt = sniff(data)
    if fmt is None:
        raise NotAnImage(f"not an allowed image format (looks like {looks_like(data)})")
    return fmt


def open_image(data: bytes) -> Image.Image:
    """``data`` opened (lazily: pixels are decoded on first use) by Pillow's plugin for its sniffed format only.

    Raises :class:`NotAnImage` when the format is not allowed or its plugin cannot read the bytes (e.g. a
    JPEG signature followed by something else). Pillow's ``DecompressionBombWarning`` is left to callers.
    """
    fmt = check(data)
    try:
        return Image.open(io.BytesIO(data), formats=[fmt])
    except (Image.DecompressionBombError, Warning):
        raise  # the caller's size policy (warnings may be errors there)
    except UnidentifiedImageError:
        raise NotAnImage(f"not a readable {fmt} image (a {fmt} signature followed by something else)") from None
    except Exception as exc:  # Pillow raises many types on hostile bytes
        raise NotAnImage(f"not a readable {fmt} image ({exc})") from None


def image_format(data: bytes) -> str | None:
    """Pillow's name of the format of ``data`` once opened (``"JPEG"``, ``"MPO"``, ``"PNG"``…), or None."""
    try:
        with open_image(data) as im:
            return im.format
    except Exception:
        return None
