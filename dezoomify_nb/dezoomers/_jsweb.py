"""Helpers for the formats ported from the web dezoomify (FSI, LizardTech, VLS, Micrio, Mnesys).

The JS engine (reference ``more-formats.md`` §0) prints numbers into URLs the JavaScript way, escapes
query values with ``encodeURIComponent``, reads ``parseInt`` prefixes, and searches pages as text with
HTML entities decoded. Everything here is linear in the size of its input: pages are cut at
:data:`MAX_PAGE_BYTES` and searched without backtracking-heavy expressions.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import quote, urljoin

from ..errors import MetadataError
from ..model import is_url, resolve_relative
from ._common import strip_bom

#: only this much of an HTML page is searched (real viewer pages are far smaller)
MAX_PAGE_BYTES = 4 * 1024 * 1024
#: characters that end a URL-like token in a page (the JS token regexes stop at spaces and quotes)
_TOKEN_END = frozenset(" \t\r\n\f\v\"'<>`")
_INT_PREFIX = re.compile(r"\s*([+-]?)(\d{1,15})")
_ENTITY_RE = re.compile(r"&(?:(amp|lt|gt|quot)|#(x[\da-f]{1,8}|\d{1,10}));", re.I)
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"'}


def js_number(x: float) -> str:
    """``x`` as JavaScript's ``String(x)`` prints it: ``1`` not ``1.0``, ``0.00005`` not ``5e-05``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + js_number(-x)
    _, digit_tuple, exponent = Decimal(repr(float(x))).as_tuple()
    assert isinstance(exponent, int)
    n = len(digit_tuple) + exponent  # the decimal point sits after n digits
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def encode_uri_component(s: str) -> str:
    """JavaScript's ``encodeURIComponent``: everything but ``A-Za-z0-9-_.!~*'()`` as UTF-8 ``%XX``."""
    return quote(s, safe="-_.!~*'()")


def js_parse_int(value: str | None) -> int | None:
    """JavaScript's ``parseInt(value)`` for decimal strings (``"512px"`` → 512); None for NaN.

    More than 15 digits is refused (None) rather than read: no image dimension is that long.
    """
    if value is None:
        return None
    m = _INT_PREFIX.match(value)
    if m is None:
        return None
    n = int(m.group(2))
    return -n if m.group(1) == "-" else n


def _entity(m: re.Match[str]) -> str:
    if m.group(1):
        return _ENTITIES[m.group(1).lower()]
    num = m.group(2)
    code = int(num[1:], 16) if num[0] in "xX" else int(num)
    return chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd"


def decode_entities(text: str) -> str:
    """The JS engine's entity decoding: ``&amp; &lt; &gt; &quot;`` and numeric ``&#…;`` only.

    (Not :func:`html.unescape`, which also reads ``&copy``/``&not`` without ``;`` and would change
    URLs such as ``?a=1&copy=2`` written unescaped in a page.)
    """
    return _ENTITY_RE.sub(_entity, text)


def page_text(data: bytes) -> str:
    """A page as the JS engine searches it: decoded (UTF-8, else Latin-1), HTML entities undone."""
    data = strip_bom(data[:MAX_PAGE_BYTES])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return decode_entities(text)


def tokens_with(text: str, needle: str, *, limit: int = 1000, side: int = 2048) -> Iterator[str]:
    """The URL-like tokens (runs without spaces or quotes) of ``text`` that contain ``needle``.

    The same tokens as the JS ``/[^\\s"']*NEEDLE[^\\s"']*/g``, found with ``str.find`` so that a page
    made of one huge token costs linear time; each token is cut at ``side`` characters around the match.
    """
    pos = 0
    for _ in range(limit):
        i = text.find(needle, pos)
        if i < 0:
            return
        start = i
        while start > 0 and i - start < side and text[start - 1] not in _TOKEN_END:
            start -= 1
        end = i + len(needle)
        while end < len(text) and end - i < side and text[end] not in _TOKEN_END:
            end += 1
        yield text[start:end]
        pos = end


def line_has(text: str, first: str, *then: str) -> bool:
    """Is there a line where ``first`` is followed by each of ``then`` in order? (JS ``/a.*b.*c/``)."""
    pos = 0
    while True:
        i = text.find(first, pos)
        if i < 0:
            return False
        eol = text.find("\n", i)
        eol = len(text) if eol < 0 else eol
        j = i + len(first)
        for part in then:
            j = text.find(part, j, eol)
            if j < 0:
                break
            j += len(part)
        else:
            return True
        pos = eol


def join_url(base: str, ref: str, what: str = "URL") -> str:
    """``ref`` resolved against ``base``; a document fetched over HTTP may only point to HTTP(S) URLs.

    (Any other scheme would be read as a local file by the network layer.)
    """
    ref = ref.strip()
    if not ref:
        raise MetadataError(f"empty {what} in {base}")
    url = resolve_relative(base, ref)
    if is_url(base) and not is_url(url):
        raise MetadataError(f"refusing the {what} {ref!r} found in {base}: only http(s) URLs are followed",
                            hint="The server's metadata points outside the web; this source cannot be used.")
    return url


def folder_of(url: str) -> str:
    """The folder of ``url`` (a URL or a local path), ending with ``/`` (empty for a bare file name)."""
    if is_url(url):
        return urljoin(url, ".")
    head = os.path.dirname(url)
    return head + "/" if head else ""
