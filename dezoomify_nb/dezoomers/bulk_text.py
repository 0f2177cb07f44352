"""Bulk lists (dezoomify-rs §13): a text file with one ``URL [custom title]`` per line.

Blank lines and lines starting with ``#`` are skipped. The first whitespace-separated token is the URL
(an http(s) URL, a ``file://`` URL, a local path — relative to the list — or a ``{{X}}``/``{{Y}}``
template); the rest of the line, if any, is the image's title. Each line becomes an
:class:`~dezoomify_nb.model.ImageRef` resolved with auto-detection only when that image is used.

A URI that ends in ``.txt`` or ``.urls`` or contains ``bulk`` or ``list`` (and no ``{{``) is read as a
list, and a bad line is an error (dezoomify-rs's rule). Any other URI is accepted only when every line of
its content is a valid entry (so ``--bulk https://example.org/my-images`` works too); the dezoomer is last
in auto-detection order, so this never shadows a real format.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from ..errors import MetadataError, WrongDezoomer
from ..model import ImageRef, is_url, resolve_relative
from ._common import split_query, strip_bom
from .base import Context, Dezoomer

log = logging.getLogger(__name__)

#: at most this many entries are read from one list
MAX_ENTRIES = 100_000
#: a longer "URL" is not one (servers refuse request lines past a few KiB)
MAX_URL_CHARS = 16 * 1024
_NAME_RE = re.compile(r"(\.(txt|urls)$)|bulk|list", re.I)


def accepts(uri: str) -> bool:
    """dezoomify-rs's rule: ``.txt``/``.urls``, or ``bulk``/``list`` in the URI, and no ``{{``."""
    return "{{" not in uri and bool(_NAME_RE.search(split_query(uri)))


def _valid(token: str) -> bool:
    if len(token) > MAX_URL_CHARS:
        return False
    if is_url(token):
        try:
            return bool(urlsplit(token).netloc)
        except ValueError:  # e.g. "http://[oops/x": invalid IPv6 literal
            return False
    if token.startswith("file://") or "{{" in token:
        return True
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", token):
        return False  # ftp://, data:// … are not fetchable
    return any(c in token for c in "/\\.")


def parse_list(text: str, base: str) -> list[ImageRef]:
    """The entries of a bulk list; relative paths are resolved against ``base`` (the list's URI)."""
    refs: list[ImageRef] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        token = parts[0]
        if not _valid(token):
            shown = token if len(token) <= 200 else token[:200] + "…"
            raise MetadataError(f"On line {number}: '{shown}' is not a valid URL or file path",
                                hint="Each line of a bulk list is 'URL [title]'; # starts a comment.")
        if len(refs) >= MAX_ENTRIES:
            log.warning("%s: more than %d entries; the rest are ignored", base, MAX_ENTRIES)
            break
        title = " ".join(parts[1].split()) if len(parts) > 1 else None
        url = resolve_relative(base, token)
        refs.append(ImageRef(url, title or None))
    return refs


class BulkTextDezoomer(Dezoomer):
    name = "bulk_text"
    description = "Text list of image URLs, one 'URL [title]' per line (bulk mode)"
    #: a source that may hold several images: ``dz.open`` gives an ImageCollection
    multi_image = True

    def images(self, ctx: Context) -> list[ImageRef]:
        if "{{" in ctx.url:
            raise WrongDezoomer("a URL template, not a bulk list")
        named = accepts(ctx.url)
        data = strip_bom(ctx.get())
        if b"\x00" in data[:4096]:
            raise WrongDezoomer("binary data, not a text list")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise WrongDezoomer("not UTF-8 text") from None
        try:
            refs = parse_list(text, ctx.url)
        except MetadataError as exc:
            if named:
                raise
            raise WrongDezoomer(f"not a bulk list ({exc})") from None
        if not refs:
            if not named:
                raise WrongDezoomer("no entry: not a bulk list")
            raise MetadataError("No valid URLs found in text file",
                                hint="Put one image URL per line (optionally followed by a title).")
        return refs
