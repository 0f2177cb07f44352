"""The input a user typed or pasted, checked before anything is fetched: quotes pasted with a URL, a mistyped
scheme (``htp://``, ``http:/host``) get a precise message instead of ``No such file: 'http:/…'``."""

from __future__ import annotations

import difflib
import re

from .errors import DezoomifyError

_QUOTES = "'\"\u2018\u2019\u201c\u201d\u00ab\u00bb`"
_SCHEMES = ("http", "https", "file")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(/*)")


def check_input(url: str | None, what: str = "INPUT_URI") -> None:
    """Refuse, with a precise message, an input pasted with its quotes or with a mistyped scheme
    (``htp://``, ``http:/host``), which would otherwise be looked for as a local file."""
    if not url:
        return
    text = url.strip()
    if text[:1] in _QUOTES or text[-1:] in _QUOTES:
        bare = text.strip(_QUOTES + " ")
        raise DezoomifyError(f"{what} is wrapped in quotes: {text[:200]}",
                             hint=f"Remove the quotes that were pasted with it: dezoomify-nb '{bare[:200]}'")
    m = _SCHEME.match(text)
    if not m:
        return
    scheme, slashes = m.group(1).lower(), m.group(2)
    rest = text[m.end():]
    if scheme in ("http", "https") and len(slashes) != 2:
        raise DezoomifyError(f"{what} {text[:200]!r}: '{scheme}:' must be followed by two slashes",
                             hint=f"Write it {scheme}://{rest[:200]}")
    if scheme in _SCHEMES or not slashes:
        return
    close = difflib.get_close_matches(scheme, ["http", "https"], n=1, cutoff=0.5)
    suggestion = f"Did you mean {close[0]}://{rest[:200]} ?" if close else (
        "dezoomify-nb reads http:// and https:// URLs and local paths (or file:// URLs).")
    raise DezoomifyError(f"unknown URL scheme '{scheme}:' in {text[:200]}", hint=suggestion)
