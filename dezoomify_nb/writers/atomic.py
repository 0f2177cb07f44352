"""Outputs that appear complete or not at all, under a name nobody else can steer.

* Every output is first written under a **temporary name of its own** in the target folder:
  ``.NAME.<random>.partial``, created exclusively (``O_CREAT|O_EXCL|O_NOFOLLOW``, mode 0o600; a folder:
  ``mkdir`` mode 0o700, which never follows a symbolic link either). A symbolic link planted at any name
  is never followed; a name already taken is skipped. Writers write through the file object they are
  handed (PNG, Pillow, tifffile), so nothing reopens the temporary by name.
* On success the temporary gets the usual permissions (``0o666``/``0o777`` minus the umask) and is
  **published** by :func:`publish`: renamed to the final name *without replacing* anything that appeared
  there meanwhile (:func:`rename_noreplace`: ``renameat2(RENAME_NOREPLACE)`` on Linux; a hard link then
  unlink, or ``mkdir`` then rename for a folder, elsewhere). Two runs writing the same name: the first to
  finish wins, the other gets :class:`~dezoomify_nb.errors.WriterError` and its temporary is removed.
  With ``overwrite`` a file is replaced atomically (``os.replace``): the last to finish wins, never a mix.
* On any failure (including Ctrl-C and the signals the CLI turns into it) the temporary is removed.
  A run killed outright (SIGKILL, power loss) leaves nothing under the final name, at most its hidden
  ``.NAME.<random>.partial``, which the next download to the same name removes (:func:`sweep_stale`).
* A temporary is **locked** (``flock``) by the process writing it, from its creation to its publication;
  the kernel drops the lock when the process dies, however it dies. :func:`sweep_stale` removes only the
  temporaries of ``NAME`` nobody holds that are older than :data:`STALE_AFTER` seconds (the age covers
  the instant between creating a temporary and locking it).

:class:`Output` carries this through a download: :meth:`Output.prepare` creates the temporary before any
tile is fetched (so a missing or read-only folder fails at once), :func:`atomic_output` /
:func:`atomic_directory` (used by the writers) fill it while the output is :meth:`Output.active`, and
:meth:`Output.publish` renames it once the caller has checked the result. Used directly, without an
active :class:`Output`, ``atomic_output(path)`` publishes at the end, replacing ``path``.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import errno
import logging
import os
import re
import secrets
import shutil
import stat
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import WriterError

#: bytes of the final name kept in a temporary name (room for ``.`` + ``.<8 hex>.partial`` in 255)
TMP_NAME_BYTES = 200
#: names tried before giving up (a taken name is only ever a collision or a planted file)
TMP_ATTEMPTS = 100
#: final names tried for a default (numbered) name taken by another run meanwhile
MAX_RENUMBER = 1000

#: an unlocked temporary older than this (seconds) is a leftover of a killed run
STALE_AFTER = 120.0

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows: no flock; leftovers are not swept there
    fcntl = None  # type: ignore[assignment]

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _token() -> str:
    return secrets.token_hex(4)


def _short_name(final: Path) -> str:
    return os.fsencode(final.name)[:TMP_NAME_BYTES].decode("utf-8", "ignore") or "out"


def temp_name(final: Path, kind: str = "partial") -> Path:
    """``.NAME.<random>.<kind>`` next to ``final`` (NAME cut to :data:`TMP_NAME_BYTES` UTF-8 bytes)."""
    return final.with_name(f".{_short_name(final)}.{_token()}.{kind}")


# --- locks: a temporary is held by its writer while it lives -----------------------------------------------

_locks: dict[str, int] = {}  # temporary path -> the descriptor holding its flock
_locks_guard = threading.Lock()


def _open_for_lock(path: Path, directory: bool) -> int:
    return os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | (_O_DIRECTORY if directory else 0))


def _hold(tmp: Path, directory: bool) -> None:
    """Lock the new temporary ``tmp`` for this process (released by :func:`_release` or by its death)."""
    if fcntl is None:
        return
    try:
        fd = _open_for_lock(tmp, directory)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a filesystem without flock: the temporary is then never swept (it stays unlocked but
        os.close(fd)  # sweep_stale cannot lock it either)
        return
    with _locks_guard:
        _locks[os.fspath(tmp)] = fd


def _release(tmp: Path | None) -> None:
    if tmp is None:
        return
    with _locks_guard:
        fd = _locks.pop(os.fspath(tmp), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def sweep_stale(final: Path, *, older_than: float = STALE_AFTER) -> list[Path]:
    """Remove the temporaries ``.NAME.<random>.partial`` of ``final`` left by killed runs; the removed paths.

    Only entries named exactly so (8 hexadecimal digits), regular files or folders (never a symbolic link),
    older than ``older_than`` seconds and that no process holds locked (a live writer, of this process or
    another, holds its temporary's lock until it publishes it) are removed, each while locked by the sweep.
    """
    if fcntl is None:
        return []
    final = Path(final)
    pattern = re.compile(re.escape(f".{_short_name(final)}.") + r"[0-9a-f]{8}\.partial")
    try:
        names = [n for n in os.listdir(final.parent or ".") if pattern.fullmatch(n)]
    except OSError:
        return []
    removed: list[Path] = []
    for name in names:
        path = final.with_name(name)
        with _locks_guard:
            if os.fspath(path) in _locks:
                continue
        try:
            st = os.lstat(path)
        except OSError:
            continue
        directory = stat.S_ISDIR(st.st_mode)
        if not (directory or stat.S_ISREG(st.st_mode)) or time.time() - st.st_mtime < older_than:
            continue
        try:
            fd = _open_for_lock(path, directory)
        except OSError:
            continue
        try:
            held = os.fstat(fd)
            if (held.st_dev, held.st_ino) != (st.st_dev, st.st_ino):
                continue  # replaced since it was looked at
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it (or no flock here)
            remove(path)
            removed.append(path)
        finally:
            os.close(fd)
    if removed:
        log.info("Removed %d leftover temporary output(s) of interrupted runs: %s", len(removed),
                 ", ".join(p.name for p in removed))
    return removed


def _default_mode(directory: bool) -> int:
    """``0o666`` (a folder: ``0o777``) minus the process umask, read without changing it when possible."""
    mask = None
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    mask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    if mask is None:  # not Linux: os.umask is the only way (set back at once)
        mask = os.umask(0o022)
        os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _chmod_fd(fd: int, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)


def _cannot_create(final: Path, exc: OSError) -> WriterError:
    return WriterError(f"Cannot create the output file {final}: {exc.strerror or exc}",
                       hint="Check that the folder exists and is writable, or choose another output name.")


def create_temp_file(final: Path) -> tuple[Path, int]:
    """A new empty file ``.NAME.<random>.partial`` next to ``final``, created exclusively: ``(path, fd)``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY
    for _ in range(TMP_ATTEMPTS):
        tmp = temp_name(final)
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR):  # something planted there: try another name
                continue
            raise _cannot_create(final, exc) from exc
        _hold(tmp, directory=False)
        return tmp, fd
    raise WriterError(f"Cannot create a temporary file next to {final}: every name tried was taken",
                      hint="Check the output folder (who writes there?), or choose another folder.")


def create_temp_dir(final: Path) -> Path:
    """A new empty folder ``.NAME.<random>.partial`` next to ``final`` (mode 0o700), made exclusively."""
    for _ in range(TMP_ATTEMPTS):
        tmp = temp_name(final)
        try:
            os.mkdir(tmp, 0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _cannot_create(final, exc) from exc
        _hold(tmp, directory=True)
        return tmp
    raise WriterError(f"Cannot create a temporary folder next to {final}: every name tried was taken",
                      hint="Check the output folder (who writes there?), or choose another folder.")


def remove(path: Path | None) -> None:
    """Remove a temporary file or folder (never following a symbolic link); silent if already gone."""
    if path is None:
        return
    try:
        st = os.lstat(path)
    except OSError:
        _release(path)
        return
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    _release(path)  # held until gone: a sweep elsewhere never races this removal


# --- rename without replacing --------------------------------------------------------------------------

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276, "riscv64": 276, "i686": 353, "i386": 353, "ppc64le": 357,
                  "s390x": 347, "armv7l": 382}


def _load_renameat2():
    """``renameat2`` from the C library (glibc >= 2.28), else through ``syscall``; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        fn.restype = ctypes.c_int
        return fn
    number = _SYS_RENAMEAT2.get(os.uname().machine)
    syscall = getattr(libc, "syscall", None)
    if number is None or syscall is None:
        return None
    syscall.restype = ctypes.c_long

    def via_syscall(olddir: int, old: bytes, newdir: int, new: bytes, flags: int) -> int:
        return syscall(ctypes.c_long(number), ctypes.c_int(olddir), ctypes.c_char_p(old), ctypes.c_int(newdir),
                       ctypes.c_char_p(new), ctypes.c_uint(flags))

    return via_syscall


_renameat2 = _load_renameat2()


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (then :class:`FileExistsError`), atomically.

    Linux: ``renameat2(RENAME_NOREPLACE)``. Where the filesystem or system lacks it: a file is hard-linked
    to ``dst`` (fails if taken) then unlinked; a folder claims ``dst`` with ``mkdir`` (fails if taken)
    and is renamed over that empty claim; Windows' ``os.rename`` never replaces. Only a filesystem with
    neither ``renameat2`` nor hard links leaves a moment between check and rename.
    """
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), str(dst))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
            raise OSError(err, os.strerror(err), str(src), None, str(dst))
    if os.name == "nt":
        os.rename(src, dst)
        return
    if stat.S_ISDIR(os.lstat(src).st_mode):
        os.mkdir(dst, 0o700)  # the claim: FileExistsError if taken
        try:
            os.rename(src, dst)  # over our own empty claim
        except BaseException:
            with contextlib.suppress(OSError):
                os.rmdir(dst)
            raise
        return
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network filesystems): claim the name, then replace
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
        os.close(fd)
        os.replace(src, dst)
        return
    os.unlink(src)


def _take_if_empty(final: Path, folder: bool) -> bool:
    """Remove ``final`` if it is an empty regular file or (``folder``) an empty folder: nothing can be lost;
    True if removed. A file is first moved aside atomically, so a complete image that another run publishes at
    that moment is never deleted (it is put back, or kept under the aside name if that fails)."""
    try:
        st = os.lstat(final)
    except FileNotFoundError:
        return True
    if stat.S_ISDIR(st.st_mode):
        if not folder:
            return False
        try:
            os.rmdir(final)  # only ever removes an empty folder
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True
    if not stat.S_ISREG(st.st_mode) or st.st_size:
        return False
    aside = temp_name(final, "old")
    try:
        os.rename(final, aside)
    except FileNotFoundError:
        return True
    st = os.lstat(aside)
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        os.unlink(aside)
        return True
    try:
        rename_noreplace(aside, final)
    except FileExistsError:
        raise WriterError(f"{final} was written by another program while this run finished; it was moved "
                          f"to {aside}", hint=f"Check both files; rename {aside.name} back if it is the one "
                          "to keep.") from None
    return False


def _numbered(path: Path, n: int) -> Path:
    return path.with_name(f"{path.stem}_{n:04d}{path.suffix}")


def publish(tmp: Path, final: Path, *, overwrite: bool = False, explicit: bool = True) -> Path:
    """Rename the finished temporary ``tmp`` to ``final`` and return the name used (its lock released).

    * ``overwrite`` (files only): ``final`` is replaced atomically, whatever is there (a symbolic link is
      replaced, never followed).
    * otherwise ``final`` is never replaced, except an empty file or empty folder (nothing to lose): if
      something else appeared there since the run started, an ``explicit`` name raises
      :class:`WriterError` (``tmp`` is left to the caller to remove), a default name becomes
      ``NAME_0001.ext``, ``NAME_0002.ext``… (the first free one).
    """
    done = _rename_to_final(tmp, final, overwrite=overwrite, explicit=explicit)
    _release(tmp)
    return done


def _rename_to_final(tmp: Path, final: Path, *, overwrite: bool, explicit: bool) -> Path:
    is_dir = stat.S_ISDIR(os.lstat(tmp).st_mode)
    if overwrite and not is_dir:
        try:
            os.replace(tmp, final)
        except IsADirectoryError:
            raise WriterError(f"The output path {final} is a directory",
                              hint="Give a file name, e.g. out.png, or a path inside that folder.") from None
        return final
    candidates = [final] if explicit else [final] + [_numbered(final, n) for n in range(1, MAX_RENUMBER)]
    for candidate in candidates:
        for _ in range(3):  # an empty file or folder there is taken away, then the rename is tried again
            try:
                rename_noreplace(tmp, candidate)
                return candidate
            except FileExistsError:
                if not _take_if_empty(candidate, is_dir):
                    break
        if explicit:
            raise WriterError(
                f"{candidate} exists (another run may have written it meanwhile); it was not overwritten "
                "and this run's image was discarded",
                hint="Give each run its own output name, or delete or move that folder first." if is_dir else
                     "Give each run its own output name, or pass --overwrite (overwrite=True in Python) "
                     "to let the last run to finish replace the file.")
    raise WriterError(f"Could not find a free name for {final} (tried up to {candidates[-1].name})",
                      hint="Choose an output name explicitly.")


# --- the output of one download ------------------------------------------------------------------------

_active: contextvars.ContextVar[Output | None] = contextvars.ContextVar("dezoomify_nb_output", default=None)


@dataclass
class Output:
    """Where one download writes: its final name, its own temporary, and how to publish it.

    ``explicit``: the user's name (never renumbered); ``overwrite``: replace an existing file;
    ``directory``: the output is a folder (IIIF, OME-Zarr).
    """

    final: Path
    explicit: bool = True
    overwrite: bool = False
    directory: bool = False
    tmp: Path | None = None
    written: bool = False  # a writer filled the temporary (else it wrote ``final`` itself: a plugin)
    _fd: int | None = field(default=None, repr=False)

    def prepare(self) -> Output:
        """Create the temporary (before any download: a missing or read-only folder fails here)."""
        self.final = Path(self.final)
        sweep_stale(self.final)  # the leftovers of killed runs to this name
        if self.directory:
            self.tmp = create_temp_dir(self.final)
        else:
            self.tmp, self._fd = create_temp_file(self.final)
        return self

    @contextlib.contextmanager
    def active(self) -> Iterator[Output]:
        """While active (in this thread), :func:`atomic_output`/:func:`atomic_directory` of ``final``
        fill this output's temporary and leave it for :meth:`publish`."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    def publish(self) -> Path:
        """Rename the finished temporary to the final name (see :func:`publish`); returns the name used."""
        self._close()
        if not self.written or self.tmp is None:  # the writer wrote the final name itself
            self.discard()
            return self.final
        try:
            done = publish(self.tmp, self.final, overwrite=self.overwrite, explicit=self.explicit)
        except BaseException:
            self.discard()
            raise
        self.tmp = None
        return done

    def discard(self) -> None:
        """Remove the temporary (idempotent)."""
        self._close()
        remove(self.tmp)
        self.tmp = None

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _take_file(self) -> BinaryIO:
        fd, self._fd = self._fd, None
        if fd is None or self.tmp is None:
            raise WriterError(f"the output {self.final} was already written by this download")
        return _file_on(fd, self.tmp)


def _file_on(fd: int, path: Path) -> BinaryIO:
    """A binary file object on ``fd`` whose ``name`` is ``path`` (tifffile and Pillow look at it)."""
    f = os.fdopen(fd, "wb")
    with contextlib.suppress(AttributeError, TypeError):
        f.raw.name = os.fspath(path)  # type: ignore[attr-defined]
    return f


def _matching(path: Path, directory: bool) -> Output | None:
    out = _active.get()
    if out is None or out.directory != directory or out.tmp is None:
        return None
    return out if os.path.abspath(out.final) == os.path.abspath(path) else None


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A binary file object on a new exclusive temporary for ``path``; complete, it becomes ``path``.

    Within an active :class:`Output` for ``path``, its temporary is used and left for
    :meth:`Output.publish`; otherwise ``path`` is replaced at the end (``os.replace``). On any exception
    the temporary is removed and the exception propagates.
    """
    path = Path(path)
    out = _matching(path, directory=False)
    if out is not None:
        tmp, f = out.tmp, out._take_file()
    else:
        tmp, fd = create_temp_file(path)
        f = _file_on(fd, tmp)
    try:
        with f:
            yield f
            f.flush()
            _chmod_fd(f.fileno(), _default_mode(False))
        if out is not None:
            out.written = True
        else:
            publish(tmp, path, overwrite=True)
    except BaseException:
        remove(tmp)
        if out is not None:
            out.tmp = None
        raise


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """A new exclusive temporary folder for ``path``; complete, it takes ``path``'s place.

    Within an active :class:`Output` for ``path``, its temporary is used and left for
    :meth:`Output.publish`; otherwise it is published at once: ``path`` may be missing, an empty file
    or an empty folder, anything else is never replaced (:class:`WriterError`). On any exception the
    temporary folder is removed.
    """
    path = Path(path)
    out = _matching(path, directory=True)
    tmp = out.tmp if out is not None else create_temp_dir(path)
    assert tmp is not None
    try:
        yield tmp
        os.chmod(tmp, _default_mode(True))
        if out is not None:
            out.written = True
        else:
            publish(tmp, path, explicit=True)
    except BaseException:
        remove(tmp)
        if out is not None:
            out.tmp = None
        raise
