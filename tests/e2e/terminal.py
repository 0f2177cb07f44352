"""Drive the real CLI in a pseudo-terminal, as a user at a terminal would (pexpect-like, stdlib only)."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Term:
    """``dezoomify-nb ARGS`` on a pseudo-terminal of ``cols`` x ``rows``: stdin, stdout and stderr are the tty."""

    def __init__(self, *args: object, cols: int = 100, rows: int = 30, cwd: Path | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(cols), "LINES": str(rows), "TERM": "xterm"}
        env.pop("PYTEST_CURRENT_TEST", None)
        argv = [sys.executable, "-m", "dezoomify_nb", *map(str, args)]
        pid, fd = pty.fork()
        if pid == 0:  # the child: the CLI on the terminal
            try:
                for sig in (signal.SIGINT, signal.SIGQUIT):  # a terminal's defaults, even if ours ignores them
                    signal.signal(sig, signal.SIG_DFL)
                if cwd is not None:
                    os.chdir(cwd)
                os.execve(sys.executable, argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        self.pid, self.fd = pid, fd
        self.output = b""
        self.status: int | None = None

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False at the end of the output."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError as exc:  # EIO: the child closed the terminal
            if exc.errno != errno.EIO:
                raise
            return False
        self.output += chunk
        return bool(chunk)

    def expect(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Wait until the output (since the start) matches ``pattern``; the match."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text)
            if m:
                return m
            if time.monotonic() > deadline or not self._read(min(0.2, max(deadline - time.monotonic(), 0.01))):
                if m := re.search(pattern, self.text):
                    return m
                raise AssertionError(f"{pattern!r} not seen in the terminal:\n{self.text}")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 120.0) -> int:
        """Read to the end of the output and return the exit status (128 + n for a signal)."""
        deadline = time.monotonic() + timeout
        while self._read(0.2):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                os.close(self.fd)
                raise AssertionError(f"the CLI did not end within {timeout}s:\n{self.text}")
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code


def screen_lines(raw: str) -> list[str]:
    """The lines as a terminal shows them: each ``\\n`` line is what follows its last ``\\r`` (a bar redrawn
    in place, or a line cleared by tqdm.write), with the ANSI cursor codes removed."""
    raw = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    return [line.rstrip("\r").rsplit("\r", 1)[-1].rstrip() for line in raw.replace("\r\n", "\n").split("\n")]
