"""Byte-range URLs: a part of a file as a URL (``…#bytes=a-b``), a recipe like the tile URLs of the model.

Single-file formats (ZIF) name each tile by such a URL: the dezoomer builds them (it never fetches), and
:func:`dezoomify_nb.net.fetch.fetch` turns the fragment into a ``Range`` header (or a seek, for a local
file). Plain data, no I/O: it sits beside :mod:`.model`, below both the dezoomers and the network layer.
"""

from __future__ import annotations

import re

_RANGE = re.compile(r"#bytes=(\d+)-(\d+)$")


def with_range(url: str, start: int, end: int) -> str:
    """``url`` asking for bytes ``start`` to ``end`` inclusive (a fragment: never sent to the server).

    The fragment makes the range part of the key everywhere (dezoomer pages, tile cache); the network layer
    turns it into a ``Range`` header (or a seek, for a local file). Used by single-file formats (ZIF).
    """
    if not 0 <= start <= end:
        raise ValueError(f"invalid byte range {start}-{end}")
    return f"{url}#bytes={start}-{end}"


def split_range(url: str) -> tuple[str, tuple[int, int] | None]:
    """``(url without the range, (start, end))``, or ``(url, None)`` when it asks for the whole file."""
    if "#bytes=" not in url:  # the common case, without a regex search
        return url, None
    m = _RANGE.search(url)
    if m is None:
        return url, None
    return url[: m.start()], (int(m.group(1)), int(m.group(2)))
