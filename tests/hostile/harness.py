"""Run the program as a hostile server's victim: in a subprocess, under an RSS cap and a time limit,
with tripwires that see local reads and program runs.

- :func:`run_isolated` runs ``python -m dezoomify_nb ARGS`` (or ``python -c CODE``) in its own process
  group. A watcher polls the RSS of the process and its children every 10 ms and kills the group past
  ``rss_mb`` (``Run.killed == "rss"``) or past ``seconds`` (``Run.killed == "time"``). ``Run.peak_rss_mb``
  is the highest RSS seen. The child runs with a fake ``gs`` (and ``gsx``, ``gswin64c``) first on PATH
  that records being called: ``Run.programs_run`` lists what ran.
- :class:`Tripwires` makes local files no remote document may lead to: ``secret`` (a regular file with a
  unique token, watched through inotify for any open) and ``fifo`` (a named pipe: whoever opens it for
  reading is seen, and released at once so nothing hangs). ``tripped()`` lists what was opened.

The RSS cap is a measurement, not ``RLIMIT_AS``: a Python process with numpy, aiohttp and thread arenas
maps far more address space than it uses, so an address-space limit would fail for the wrong reason.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

#: a budget that the whole CLI with numpy, zarr, dask and aiohttp stays well under on honest inputs
DEFAULT_RSS_MB = 700
DEFAULT_SECONDS = 60.0

_FAKE_PROGRAMS = ("gs", "gsx", "gswin32c", "gswin64c", "convert", "magick", "ffmpeg")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    elapsed: float
    killed: str | None = None  # "rss" or "time" when the watcher killed it
    programs_run: list[str] = field(default_factory=list)

    def one_error_line(self) -> str:
        """The single ``error:`` line (asserting there is exactly one, with a ``hint:``, and no traceback)."""
        assert "Traceback" not in self.stderr + self.stdout, self.stderr
        errors = [ln for ln in self.stderr.splitlines() if ln.startswith("error:")]
        hints = [ln for ln in self.stderr.splitlines() if ln.startswith("hint:")]
        assert len(errors) == 1 and len(hints) == 1, self.stderr
        return errors[0]

    def assert_contained(self, rss_mb: float | None = None) -> None:
        """Not killed, no program run, and (when given) under ``rss_mb``."""
        assert self.killed is None, f"killed for {self.killed} (peak {self.peak_rss_mb:.0f} MB)\n{self.stderr}"
        assert not self.programs_run, f"programs were run: {self.programs_run}"
        if rss_mb is not None:
            assert self.peak_rss_mb < rss_mb, f"peak RSS {self.peak_rss_mb:.0f} MB >= {rss_mb} MB"


def _fake_bin(folder: Path, log: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in _FAKE_PROGRAMS:
        script = folder / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 1\n')
        script.chmod(0o755)
    return folder


def _rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_isolated(
    args: list[str] | None = None,
    *,
    code: str | None = None,
    rss_mb: float = DEFAULT_RSS_MB,
    seconds: float = DEFAULT_SECONDS,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    workdir: Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> Run:
    """Run the CLI with ``args`` (or Python ``code``) in a watched subprocess; see the module doc."""
    workdir = Path(workdir or Path(os.environ.get("TMPDIR", "/tmp")) / f"dz-hostile-{uuid.uuid4().hex[:8]}")
    log = workdir / "programs.log"
    fake = _fake_bin(workdir / "bin", log)
    child_env = {**os.environ, **(env or {})}
    child_env["PATH"] = f"{fake}{os.pathsep}{child_env.get('PATH', '')}"
    child_env.setdefault("PYTHONFAULTHANDLER", "1")
    root = str(Path(__file__).resolve().parents[2])  # the checkout under test, also for a git worktree
    child_env["PYTHONPATH"] = root + (os.pathsep + child_env["PYTHONPATH"] if child_env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-c", code] if code is not None else [sys.executable, "-m", "dezoomify_nb", *(args or [])]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin, env=child_env,
                            cwd=cwd, start_new_session=True, text=True, errors="replace")
    watched = psutil.Process(proc.pid)
    peak = 0
    killed: list[str] = []
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss(watched))
            reason = "rss" if peak > rss_mb * 2**20 else "time" if time.monotonic() - start > seconds else None
            if reason:
                killed.append(reason)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            done.wait(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    done.set()
    watcher.join()
    programs = log.read_text().splitlines() if log.exists() else []
    return Run(proc.returncode, out, err, peak / 2**20, time.monotonic() - start,
               killed[0] if killed else None, programs)


# --- tripwires ----------------------------------------------------------------------------------------

_IN_ACCESS, _IN_OPEN = 0x1, 0x20
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class Tripwires:
    """Local files that must never be opened: ``secret`` (regular file) and ``fifo`` (named pipe).

    Use as a context manager; ``tripped()`` returns the names of the files that were opened.
    """

    TOKEN_PREFIX = "dz-secret-"

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.token = self.TOKEN_PREFIX + uuid.uuid4().hex
        self.secret = folder / "secret.txt"
        self.secret.write_text(self.token + "\n")
        self.fifo = folder / "pipe"
        if self.fifo.exists():
            self.fifo.unlink()
        os.mkfifo(self.fifo)
        self._opened: set[str] = set()
        self._stop = threading.Event()
        self._fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if _libc.inotify_add_watch(self._fd, str(self.secret).encode(), _IN_OPEN | _IN_ACCESS) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self._threads = [threading.Thread(target=self._watch_fifo, daemon=True)]

    @property
    def file_url(self) -> str:
        return self.secret.as_uri()

    def __enter__(self) -> Tripwires:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        self._drain_secret()
        os.close(self._fd)

    def _drain_secret(self) -> None:
        """Read the queued inotify events (the kernel keeps them until read: no timing involved)."""
        while True:
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                return
            offset = 0
            while offset + 16 <= len(data):
                _wd, mask, _cookie, size = struct.unpack_from("iIII", data, offset)
                if mask & (_IN_OPEN | _IN_ACCESS):
                    self._opened.add("secret")
                offset += 16 + size

    def _watch_fifo(self) -> None:
        while not self._stop.is_set():
            try:  # succeeds only while a reader has the pipe open (ENXIO otherwise)
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                self._stop.wait(0.005)
                continue
            self._opened.add("fifo")
            try:
                os.write(fd, f"{self.token}\n".encode())
            except OSError:  # the reader went away meanwhile (EPIPE) or its pipe is full (EAGAIN)
                pass
            finally:
                os.close(fd)

    def tripped(self) -> list[str]:
        """What was opened so far (call it after the watched process ended)."""
        self._drain_secret()
        return sorted(self._opened)
