"""Cookies the user gives (``--cookies cookies.txt``, ``cookies={...}``), carried as data in the picklable
:class:`~.config.NetConfig` and matched per request (domain, path, secure, expiry), never a live jar.

A cookies.txt (the Netscape format browser extensions export and curl / yt-dlp read; the ``#HttpOnly_``
prefix those extensions write is understood) is read with :class:`http.cookiejar.MozillaCookieJar`. A
cookie goes only to the hosts its domain matches: ``.example.org`` (or the include-subdomains flag) to
``example.org`` and its sub-domains, ``example.org`` without it to that host only. A dict
(``{"name": "value"}``) has no domain: its cookies go where the user's headers go (the input URL's site,
or every host with ``header_all_hosts``).
"""

from __future__ import annotations

import functools
import http.cookiejar
import io
import os
import time
import warnings
from collections.abc import Mapping

from ..errors import DezoomifyError

#: one cookie: (domain, include sub-domains, path, secure only, expires (0: a session cookie), name, value);
#: domain ``""``: the user's own cookie (a dict), scoped like the user's headers
Cookie = tuple[str, bool, str, bool, float, str, str]

_MAGIC = "# Netscape HTTP Cookie File\n"


class CookiesError(DezoomifyError, ValueError):
    """An unreadable ``--cookies`` file."""


class CookieSet:
    """Cookies as data (picklable, hashable with the hash computed once: it keys memoised look-ups that
    run per request); its repr shows no value."""

    __slots__ = ("_hash", "items")

    def __init__(self, items: tuple[Cookie, ...]) -> None:
        self.items = tuple(items)
        self._hash = hash(self.items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, CookieSet) and self._hash == other._hash
                                 and self.items == other.items)

    def __reduce__(self) -> tuple[type[CookieSet], tuple[tuple[Cookie, ...]]]:
        return (CookieSet, (self.items,))

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"CookieSet(<{len(self.items)} cookies>)"

    @classmethod
    def of(cls, source: str | os.PathLike[str] | Mapping[str, str] | CookieSet | None) -> CookieSet | None:
        """A cookies.txt path, a ``{name: value}`` dict (or a CookieSet, or None) as a CookieSet."""
        if source is None or isinstance(source, CookieSet):
            return source
        return cls(load_cookies(source))


def load_cookies(source: str | os.PathLike[str] | Mapping[str, str]) -> tuple[Cookie, ...]:
    """A cookies.txt path, or a ``{name: value}`` dict, as :data:`Cookie` tuples (expired ones dropped)."""
    if isinstance(source, Mapping):
        return tuple(("", False, "/", False, 0.0, str(k), str(v)) for k, v in source.items())
    path = os.fspath(source)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(64 * 1024 * 1024)
    except OSError as exc:
        raise CookiesError(f"cannot read the cookies file {path}: {exc.strerror or exc}",
                           hint="Give a cookies.txt exported from your browser (Netscape format).") from None
    if not text.lstrip().startswith(("# Netscape HTTP Cookie File", "# HTTP Cookie File")):
        text = _MAGIC + text  # exports without the header line are common; the lines are what matter
    jar = http.cookiejar.MozillaCookieJar()
    try:
        with warnings.catch_warnings():  # a malformed line: the jar warns ("http.cookiejar bug!"), then raises
            warnings.simplefilter("ignore")
            jar._really_load(io.StringIO(text), path, ignore_discard=True, ignore_expires=True)  # type: ignore[attr-defined]
    except (http.cookiejar.LoadError, ValueError) as exc:
        raise CookiesError(f"invalid cookies file {path}: {exc}",
                           hint="Expected the Netscape cookies.txt format: 7 tab-separated fields a line "
                                "(domain, subdomains, path, secure, expiry, name, value).") from None
    now = time.time()
    cookies = []
    for c in jar:
        if c.expires and c.expires <= now:
            continue
        cookies.append((c.domain.lower(), c.domain.startswith(".") or c.domain_specified, c.path or "/",
                        bool(c.secure), float(c.expires or 0), c.name, c.value or ""))
    return tuple(cookies)


def _domain_matches(domain: str, subdomains: bool, host: str) -> bool:
    bare = domain.lstrip(".")
    return host == bare or (subdomains and host.endswith("." + bare))


def _path_matches(cookie_path: str, path: str) -> bool:
    if path == cookie_path or not cookie_path or cookie_path == "/":
        return True
    return path.startswith(cookie_path) and (cookie_path.endswith("/") or path[len(cookie_path)] == "/")


@functools.lru_cache(maxsize=1024)
def _for_host(cookies: CookieSet, https: bool, host: str, own: bool) -> tuple[tuple[str, str], ...]:
    """(path, ``name=value``) of the cookies that go to ``host`` (memoised: looked up per request)."""
    now = time.time()
    found = []
    for domain, subdomains, cpath, secure, expires, name, value in cookies.items:
        if domain == "":
            if own:
                found.append(("/", f"{name}={value}"))
        elif (https or not secure) and not (expires and expires <= now) and _domain_matches(domain, subdomains, host):
            found.append((cpath, f"{name}={value}" if name else value))
    return tuple(found)


def cookie_header(cookies: CookieSet, https: bool, host: str, path: str, own: bool) -> str | None:
    """The ``Cookie`` value for a request to ``host`` (a hostname, lower-case) at ``path``; ``own``: the
    user's dict cookies go to this host. ``None``: no cookie matches."""
    pairs = [pair for cpath, pair in _for_host(cookies, https, host, own) if _path_matches(cpath, path)]
    return "; ".join(pairs) or None
