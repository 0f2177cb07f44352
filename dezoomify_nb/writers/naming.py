"""Output file names (dezoomify-rs §12.2): default extension, title sanitizing, safe reservation.

* :func:`output_path` picks the path: an explicit ``outfile`` with an extension is used as given,
  one without gets ``.jpg``/``.png``; with no ``outfile`` the sanitized title (or
  ``dezoomified``) goes in ``directory``.
* :func:`choose` picks the name a download aims at, before anything is downloaded, and creates
  nothing: a **default** name that exists becomes ``base_0001.ext``, ``base_0002.ext``… An
  **explicit** name that exists is never overwritten: :class:`~dezoomify_nb.errors.WriterError`
  is raised, before any download, with a hint — the user typed that name, so silently writing
  somewhere else would hide the result, and overwriting could destroy an earlier download —
  unless ``overwrite``. An empty file (or an empty folder, for a folder output) is the one
  exception: nothing can be lost, it is replaced.
* The image is written under a temporary name of its own and renamed to the final name only when
  complete, never replacing what another run put there meanwhile (:mod:`.atomic`): a killed run leaves
  nothing under the final name.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from ..errors import WriterError

DEFAULT_BASENAME = "dezoomified"
#: Largest side still written as JPEG by default (libjpeg fails at 65,501).
JPEG_MAX_SIDE = 65_500
#: Longest sanitized title, in UTF-8 bytes (room is left for ``_0001.jpeg`` and the temporary name's
#: ``.`` + ``.<random>.partial`` within the usual 255-byte file-name limit).
MAX_NAME_BYTES = 200
MAX_COLLISIONS = 100_000

_FORBIDDEN = set('/\\:*?"<>|')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


_WORD_RE = re.compile(r"\w+(?:-+\w+)*")


def compact_title(title: str | None) -> str:
    """A compact file name for the images of a collection: words (letters, digits, inner hyphens) joined
    by ``_``, so it needs no quoting anywhere and sorts well: ``"Gospel-book, Lindisfarne Gospels, f. 1r"``
    → ``Gospel-book_Lindisfarne_Gospels_f_1r``. Then :func:`sanitize_title` (length, device names)."""
    if not title:
        return ""
    words = _WORD_RE.findall(unicodedata.normalize("NFC", str(title)))
    return sanitize_title("_".join(words))


def sanitize_title(title: str | None) -> str:
    """A reader-friendly file name from a title (after crate ``sanitize-filename-reader-friendly``).

    ``/ \\ : * ? " < > |`` and non-printable punctuation become ``_``, newlines ``-``, other
    control and format characters a space (zero-width space is dropped); runs of spaces or
    underscores collapse to one, and spaces, underscores and dots are trimmed from both ends
    (a trailing dot is invalid on Windows and a leading one hides the file). The result is cut to
    :data:`MAX_NAME_BYTES` UTF-8 bytes on a character boundary. Never ``"."``, ``".."`` or a
    Windows device name; may be ``""`` (callers then use ``dezoomified``).
    """
    if not title:
        return ""
    out = []
    text = re.sub(r"[ \t]*[\r\n]+\s*", "\n", unicodedata.normalize("NFC", str(title)))
    for ch in text:
        if ch in _FORBIDDEN:
            out.append("_")
        elif ch == "\n":
            out.append("-")
        elif ch == "\u200b":
            continue
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            cat = unicodedata.category(ch)
            out.append("_" if cat.startswith("P") else " ")
    name = "".join(out)
    name = re.sub(r"\s+", " ", name)
    name = re.sub(r"_+", "_", name)
    name = name.strip(" _.-")
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        name = encoded[:MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip(" _.-")
    if name in (".", "..") or set(name) <= {"."}:
        return ""
    if _WINDOWS_RESERVED.match(name):
        name = "_" + name
    return name


def default_extension(width: int | None, height: int | None) -> str:
    """``"jpg"`` when the size is known and its larger side is ≤ 65,500 px, else ``"png"``."""
    if width is None or height is None or width <= 0 or height <= 0:
        return "png"
    return "jpg" if max(width, height) <= JPEG_MAX_SIDE else "png"


def output_path(outfile: str | os.PathLike | None, *, title: str | None = None, width: int | None = None,
                height: int | None = None, directory: str | os.PathLike = ".") -> Path:
    """The output path by dezoomify-rs's rules (§12.2); does not touch the filesystem.

    ``output_path(None, title="hello")`` → ``hello.png``; with ``width=height=1000`` →
    ``hello.jpg``; ``output_path("test.tiff", ...)`` → ``test.tiff``; ``output_path("out", ...)``
    → ``out.jpg`` or ``out.png``. An explicit ``outfile`` is not joined to ``directory``.
    """
    ext = default_extension(width, height)
    if outfile is not None and str(outfile) != "":
        path = Path(outfile).expanduser()
        if path.suffix and path.suffix != ".":
            return path
        return path.with_name(path.name.rstrip(".") + "." + ext)
    base = sanitize_title(title) or DEFAULT_BASENAME
    return Path(directory) / f"{base}.{ext}"


def _numbered(path: Path, n: int) -> Path:
    return path.with_name(f"{path.stem}_{n:04d}{path.suffix}")


def _is_empty(path: Path, directory: bool) -> bool:
    """An empty regular file, or (for a folder output) an empty folder: replacing it loses nothing."""
    try:
        if path.is_symlink():
            return False
        if path.is_file():
            return path.stat().st_size == 0
        return directory and path.is_dir() and not any(path.iterdir())
    except OSError:
        return False


def choose(path: str | os.PathLike, *, explicit: bool, overwrite: bool = False, directory: bool = False) -> Path:
    """The output name a download aims at, checked before anything is downloaded (nothing is created).

    * ``explicit=False`` (a default name): ``path`` if free, else ``base_0001.ext``, ``base_0002.ext``…
      (the first free one; if another run takes it meanwhile, the next free one is used at the end).
    * ``explicit=True`` (the user's name): ``path``. If it exists — a symbolic link too — it is never
      replaced (:class:`WriterError`), except an empty file (or an empty folder for a folder output) and,
      with ``overwrite``, a file (replaced atomically once the new image is complete; a folder output
      never replaces a folder that is not empty).
    """
    path = Path(path)
    if not os.path.lexists(path):
        return path
    if explicit or overwrite:
        if _is_empty(path, directory):
            return path
        if path.is_dir() and not path.is_symlink():
            if directory:
                raise WriterError(f"The output folder {path} exists and is not empty; not overwriting it",
                                  hint="Choose another output name, or delete or move that folder first.")
            raise WriterError(f"The output path {path} is a directory",
                              hint="Give a file name, e.g. out.png, or a path inside that folder.")
        if overwrite and not directory:
            return path
        raise WriterError(
            f"The output file {path} already exists; it will not be overwritten",
            hint="Choose another output name, delete or move the existing file first"
                 + (", or pass --overwrite (overwrite=True in Python)." if not directory else "."))
    for n in range(1, MAX_COLLISIONS):
        candidate = _numbered(path, n)
        if not os.path.lexists(candidate):
            return candidate
    raise WriterError(f"Could not find a free name for {path} (tried up to {_numbered(path, MAX_COLLISIONS - 1).name})",
                      hint="Choose an output name explicitly.")
