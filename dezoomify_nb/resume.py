"""Long runs that resume and repair: ``OUT.failed.json``, the bulk journal, download archives, :func:`dezoomify_nb.api.repair`.

* **``OUT.failed.json``** (:func:`write_failed`) is written beside an output whose tiles did not all come:
  what was downloaded (the source's URL, dezoomer, geometry key, Referer; the level, region, format, mode,
  compression), the tile cache used, and every missing tile (level, column, row, URL, error). A complete
  download of the same output removes it. Cookies and ``-H`` headers are never written to it.
* :func:`dezoomify_nb.api.repair` reads it, reopens the source (metadata only), forgets the 404s the cache remembered for
  those tiles and writes the output again: with the tile cache every other tile comes from the cache, so
  only the missing tiles are requested.
* **The journal** (:class:`Journal`, ``.dezoomify-nb.jsonl`` in the output folder) is how a bulk run knows
  an output is complete: one JSON line per finished item (its source key, the output's name, size and
  status), appended only after the output was published under its final name. Outputs are written
  atomically (:mod:`dezoomify_nb.writers.atomic`), so a run killed mid-image leaves neither a file nor a
  line; a file that is not the one recorded (another size, deleted, replaced) is not taken for complete.
* **The archive** (:class:`Archive`, ``--archive FILE``) lists the source keys of finished items, one per
  line (as yt-dlp's and gallery-dl's download archives): an item listed there is skipped whatever the
  output folder holds, so a list can be extended and run again.

Journal and archive lines are appended with ``O_APPEND`` in one ``write`` under an exclusive ``flock``:
several runs may share them.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ._version import __version__
from .errors import DezoomifyError, MetadataError

if TYPE_CHECKING:
    from .cache import TileCache
    from .model import Image

log = logging.getLogger("dezoomify_nb")

FAILED_SUFFIX = ".failed.json"
JOURNAL_NAME = ".dezoomify-nb.jsonl"
KIND = "dezoomify-nb missing tiles"
SCHEMA = 1
#: a sidecar or journal larger than this is not read (they are a few hundred bytes per tile or item)
MAX_RECORD_BYTES = 256 * 1024 * 1024


def failed_path(out: str | os.PathLike[str]) -> Path:
    """``out.jpg`` → ``out.jpg.failed.json`` (a folder output ``x.iiif`` → ``x.iiif.failed.json`` beside it)."""
    out = Path(out)
    return out.with_name(out.name + FAILED_SUFFIX)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _write_json_atomic(path: Path, doc: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def cache_location(cache: TileCache | None) -> str | None:
    """The tile cache's folder (a local store), to be found again by :func:`dezoomify_nb.api.repair`; None otherwise."""
    root = getattr(getattr(cache, "store", None), "root", None)
    return os.path.abspath(os.fspath(root)) if root is not None else None


def _referer(image: Image) -> str | None:
    """The Referer of an image found in a web page (the page, or its frame); None for others (their levels
    set their own again when reopened)."""
    if not any(k == "found_in_page" for k, _ in image.metadata):
        return None
    for name, value in image.levels[0].headers:
        if name.lower() == "referer":
            return value
    return None


def failed_tiles(image: Image, failed: Sequence[tuple[str, str]],
                 failed_at: Sequence[tuple[int, int, int] | None], levels: range) -> list[dict[str, Any]]:
    """One record per failed tile: ``level``, ``col``, ``row``, ``url``, ``error``. A failure reported
    without its place (from a cluster's workers) is placed by its URL among the tiles of ``levels``."""
    by_url: dict[str, tuple[int, int, int]] | None = None
    out = []
    for i, (url, error) in enumerate(failed):
        where = failed_at[i] if i < len(failed_at) else None
        if where is None:
            if by_url is None:
                by_url = {image.levels[k].tile_url(c, r): (k, c, r) for k in levels
                          for r in range(image.levels[k].rows) for c in range(image.levels[k].cols)}
            where = by_url.get(url)
        k, col, row = where if where is not None else (None, None, None)
        out.append({"level": k, "col": col, "row": row, "url": url, "error": error})
    return out


def write_failed(out: Path, *, image: Image, level: int, region: tuple[int, int, int, int] | None,
                 width: int, height: int, writer: str, mode: str, compression: int, tiles: int,
                 missing: list[dict[str, Any]], cache: TileCache | None, written: bool) -> Path:
    """Write ``OUT.failed.json`` (atomically) and return its path."""
    from .cache.tilecache import source_key

    doc = {
        "kind": KIND, "schema": SCHEMA, "dezoomify_nb": __version__, "time": _now(),
        "output": out.name, "image_written": written,
        "source": {"url": image.url, "dezoomer": image.dezoomer, "title": image.title,
                   "key": source_key(image), "referer": _referer(image)},
        "level": level, "region": list(region) if region is not None else None, "width": width,
        "height": height, "format": writer, "mode": mode, "compression": compression,
        "tiles": tiles, "cache": cache_location(cache), "failed": missing,
    }
    path = failed_path(out)
    _write_json_atomic(path, doc)
    return path


def clear_failed(out: Path) -> None:
    """Remove a stale ``OUT.failed.json`` (the output is now complete)."""
    with contextlib.suppress(FileNotFoundError):
        failed_path(out).unlink()


def _bad(path: Path, why: str) -> MetadataError:
    return MetadataError(f"{path} is not a record of missing tiles: {why}",
                         hint="--repair takes the output file whose OUT.failed.json a partial download wrote.")


def read_failed(out: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked contents of ``OUT.failed.json`` for the output ``out``."""
    path = failed_path(out)
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise _bad(path, "too large")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DezoomifyError(f"no record of missing tiles for {out} ({path.name} does not exist)",
                             hint="Only a download where tiles failed can be repaired; it writes OUT.failed.json "
                                  "beside the image.") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _bad(path, str(exc)) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("schema") != SCHEMA:
        raise _bad(path, f"not a {KIND!r} document of schema {SCHEMA}")
    src = doc.get("source")
    ints = ("level", "width", "height", "compression", "tiles")
    if (not isinstance(src, dict) or not all(isinstance(src.get(k), str) for k in ("url", "dezoomer", "key"))
            or not all(isinstance(doc.get(k), int) and doc[k] >= 0 for k in ints)
            or not isinstance(doc.get("format"), str) or not isinstance(doc.get("mode"), str)
            or not isinstance(doc.get("failed"), list)):
        raise _bad(path, "fields missing or of the wrong type")
    region = doc.get("region")
    if region is not None and not (isinstance(region, list) and len(region) == 4
                                   and all(isinstance(v, int) and v >= 0 for v in region)):
        raise _bad(path, "region is not [x, y, width, height]")
    for tile in doc["failed"]:
        if not isinstance(tile, dict) or not all(tile.get(k) is None or (isinstance(tile.get(k), int) and tile[k] >= 0)
                                                 for k in ("level", "col", "row")):
            raise _bad(path, "a failed tile is not {level, col, row, url, error}")
    return doc


# --- appending lines, several runs at once ---------------------------------------------------------
@contextlib.contextmanager
def _locked_append(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            import fcntl
        except ImportError:  # Windows: O_APPEND alone
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def append_line(path: Path, line: str) -> None:
    """Append one line (whole, in one write, under an exclusive lock)."""
    data = (line.replace("\n", " ") + "\n").encode("utf-8")
    with _locked_append(path) as fd:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]


def _read_lines(path: Path) -> list[str]:
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            log.warning("%s is over %d MiB; not read", path, MAX_RECORD_BYTES >> 20)
            return []
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


class Journal:
    """The finished items of the bulk runs that wrote into a folder (``.dezoomify-nb.jsonl``)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / JOURNAL_NAME
        self._latest: dict[tuple[str, str], dict[str, Any]] = {}
        for line in _read_lines(self.path):
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if (isinstance(rec, dict) and isinstance(rec.get("key"), str) and isinstance(rec.get("path"), str)
                        and isinstance(rec.get("asked", ""), str)):
                    self._latest[self._id(rec["key"], rec.get("asked", ""))] = rec

    def output(self, key: str, asked: str = "") -> tuple[Path, str] | None:
        """``(path, status)`` of the output recorded for ``key`` if it was asked for the same way (``asked``:
        the output name given, "" for names from titles) and is still the file that was recorded (same size;
        a folder output: still a folder), else None."""
        rec = self._latest.get(self._id(key, asked))
        if rec is None:
            return None
        path = self.folder / rec["path"]
        size = rec.get("size")
        try:
            intact = path.is_dir() if size is None else (path.is_file() and path.stat().st_size == size)
        except OSError:
            intact = False
        return (path, str(rec.get("status"))) if intact else None

    @staticmethod
    def _id(key: str, asked: str) -> tuple[str, str]:
        return (key, asked)

    def record(self, key: str, path: Path, status: str, asked: str = "") -> None:
        """Append that ``key`` was saved to ``path`` (``done`` or ``partial``), asked as ``asked``."""
        path = Path(path)
        try:
            name = os.path.relpath(path, self.folder)
        except ValueError:  # another drive
            name = os.path.abspath(path)
        size = None if path.is_dir() else path.stat().st_size
        rec = {"key": key, "asked": asked, "path": name, "status": status, "size": size, "time": _now()}
        self.folder.mkdir(parents=True, exist_ok=True)
        append_line(self.path, json.dumps(rec, ensure_ascii=False))
        self._latest[self._id(key, asked)] = rec

    def rerecord(self, path: Path, status: str) -> None:
        """The output at ``path`` changed (repaired): record it again under the item(s) it was recorded for."""
        name = os.path.relpath(Path(path), self.folder)
        for (key, asked), rec in list(self._latest.items()):
            if rec["path"] == name:
                self.record(key, Path(path), status, asked)


class Archive:
    """A download archive: the source keys of finished items, one per line (``#`` comments allowed)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.keys = {ln.strip() for ln in _read_lines(self.path) if ln.strip() and not ln.startswith("#")}

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def add(self, key: str) -> None:
        if key not in self.keys:
            append_line(self.path, key)
            self.keys.add(key)


class BulkImage(Protocol):
    """What :func:`item_key` reads of an image (a :class:`~dezoomify_nb.zoomable.ZoomableImage`): a Protocol,
    not the class, since ``ZoomableImage.save`` calls this module (naming the class here, even for the type
    checker alone, would tie the two modules in a circle)."""

    @property
    def image(self) -> Image: ...


def item_key(image: BulkImage) -> str:
    """What identifies an item of a bulk run, known without fetching anything: the URL of its line or
    canvas (``#xywh=`` when it paints a region of an image, ``#image=N`` for image N of a manifest line)."""
    from .model import ImageRef

    # a CollectionImage has its line or canvas (.entry: an ImageRef or an Image) and .image_index; looked up
    # by attribute, so that this module (used by ZoomableImage.save) does not import the collections above it
    entry = getattr(image, "entry", None) or image.image
    key = entry.url
    region = entry.region
    if region is not None:
        key += "#xywh=" + ",".join(str(int(v)) for v in region)
    image_index = getattr(image, "image_index", 0)
    if isinstance(entry, ImageRef) and image_index:
        key += f"#image={image_index}"
    return key
