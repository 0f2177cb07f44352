"""Which local files may be read, and reading them: the one gate every non-http(s) URL goes through.

A remote document must never make us read the local disk. The rule, applied by :func:`~.fetch.fetch`
(so by every metadata page, tile, thumbnail and byte range alike):

- only ``http://`` and ``https://`` URLs go to the network; any other scheme (``ftp:``, ``data:``,
  ``javascript:``…) is refused;
- a ``file://`` URL or a path (absolute or relative) is read only when ``NetConfig.local_root`` is set —
  which :func:`dezoomify_nb.open` does only when the *user* gives a local path as the input: the real
  path of that input's folder — and only when its real path (symbolic links and ``..`` resolved) is
  inside that folder;
- and only regular files: never a directory, named pipe, device, socket, ``/dev/stdin`` or ``/proc`` entry.

The driver (:mod:`dezoomify_nb.resolve`) drops ``local_root`` for everything found from a document
fetched over http(s), so such a document can only lead to more http(s) URLs.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import FetchError
from .config import NetConfig
from .failures import too_large

#: a URL scheme (two characters at least: ``C:\\`` is a Windows drive, not a scheme)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")

REMOTE_HINT = ("A document fetched over http(s) may only point to http(s) URLs, never to local files; this "
               "source cannot be used. (Local files are read only when the input itself is a local path.)")
OUTSIDE_HINT = ("A local input may only refer to files in its own folder and its sub-folders (symbolic links "
                "leading out are not followed): put the files next to the input.")
SPECIAL_HINT = "Only regular files are read: never directories, named pipes, devices or /proc entries."


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def scheme_of(url: str) -> str | None:
    """The lower-case scheme of ``url``, or None for a path (``file`` for ``file://``)."""
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else None


def local_path(url: str) -> Path:
    """The path a ``file://`` URL or a plain path names (``file://localhost/x`` is ``/x``)."""
    if url[:7].lower() == "file://":
        return Path(unquote(urlsplit(url).path))
    return Path(url)


def root_of(url: str) -> str | None:
    """The ``local_root`` for a user's input: the real path of its folder (of itself for a folder), or None
    when it is not local."""
    if is_http(url) or scheme_of(url) not in (None, "file"):
        return None
    real = os.path.realpath(local_path(url))
    return real if os.path.isdir(real) else os.path.dirname(real)


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def refusal(url: str, config: NetConfig) -> FetchError | None:
    """Why ``url`` (a non-http(s) URL, without a ``#bytes=`` fragment) may not be read, or None.

    Looks only at names (the real path), never opens anything.
    """
    scheme = scheme_of(url)
    if scheme not in (None, "file"):
        return _explaining(FetchError(
            url, f"refusing {url[:200]!r}: only http(s) URLs and local files can be fetched",
            hint=f"The source points to a {scheme}: URL, which dezoomify-nb never fetches."))
    if scheme == "file":
        netloc = urlsplit(url).netloc.lower()
        if netloc not in ("", "localhost"):
            return _explaining(FetchError(url, f"refusing {url[:200]!r}: a file:// URL on another host",
                                          hint="Only http(s) URLs and local files can be fetched."))
    if config.local_root is None:
        return _explaining(FetchError(url, f"refusing to read the local file {url[:200]!r}: only a local "
                                           "input's folder may be read, never from a document fetched over "
                                           "http(s)", hint=REMOTE_HINT))
    real = os.path.realpath(local_path(url))
    if not _inside(real, config.local_root):
        return _explaining(FetchError(url, f"refusing to read {real!r}: it is outside the input's folder "
                                           f"{config.local_root!r}", hint=OUTSIDE_HINT))
    return None


def _explaining(err: FetchError) -> FetchError:
    """Mark a refusal as the reason to show first when no dezoomer could open the input (with its hint)."""
    err.explains_input = True  # type: ignore[attr-defined]
    return err


def read(url: str, config: NetConfig, rng: tuple[int, int] | None, cap: int, metadata: bool = False) -> bytes:
    """The bytes of the local file ``url`` names (``rng``: bytes ``start``–``end`` inclusive).

    Raises :class:`FetchError`: a refusal (:func:`refusal`, a file that is not regular), a missing file or a
    directory (status 404), an unreadable or short file, or one over ``cap`` (a metadata or a tile cap).
    """
    refused = refusal(url, config)
    if refused is not None:
        raise refused
    path = os.path.realpath(local_path(url))
    want = cap if rng is None else rng[1] - rng[0] + 1
    if want > cap:
        raise too_large(url, cap, metadata).error
    try:
        info = os.stat(path)  # before opening: opening a named pipe would block, a device would be read
    except FileNotFoundError:
        raise FetchError(url, f"No such file: {path}", status=404) from None
    except OSError as exc:
        raise FetchError(url, f"Cannot read {path}: {exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise FetchError(url, f"{path} is a directory", status=404)
    if not stat.S_ISREG(info.st_mode):
        raise _explaining(FetchError(url, f"refusing to read {path}: not a regular file", hint=SPECIAL_HINT))
    try:  # O_NOFOLLOW and the check again on the open file: nothing swapped in meanwhile is read
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise FetchError(url, f"Cannot read {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _explaining(FetchError(url, f"refusing to read {path}: not a regular file", hint=SPECIAL_HINT))
        try:
            if rng is not None:
                f.seek(rng[0])
            data = f.read(want + (rng is None))
        except OSError as exc:
            raise FetchError(url, f"Cannot read {path}: {exc.strerror or exc}") from None
    if rng is None and len(data) > cap:
        raise too_large(url, cap, metadata).error
    if rng is not None and len(data) != want:
        raise FetchError(url, f"{path} ends before byte {rng[1]}", status=416)
    return data
