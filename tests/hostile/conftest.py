"""Helpers for the hostile-input suite: every failure is one ``error:`` line, one ``hint:`` line,
a non-zero exit and no traceback — through the CLI (in process) and through ``dz.open``."""

from __future__ import annotations

import itertools
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dezoomify_nb.cli import main

#: no pacing, no retries, short timeouts: a hostile server must not slow the suite down
FAST_CLI = ["-i", "0ms", "--retry-delay", "10ms", "-r", "0", "--timeout", "3s", "--connect-timeout", "3s"]
FAST_API = {"min_interval": 0.0, "retry_delay": 0.01, "retries": 0, "timeout": 3.0, "connect_timeout": 3.0}


def run_cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([*FAST_CLI, *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def cli_error(capsys, *args: object, code: int = 1) -> str:
    """Run the CLI, expect failure with exactly one ``error:`` and one ``hint:`` line; return stderr."""
    rc, out, err = run_cli(capsys, *args)
    assert "Traceback" not in out + err, err
    lines = err.splitlines()
    errors = [ln for ln in lines if ln.startswith("error:")]
    hints = [ln for ln in lines if ln.startswith("hint:")]
    assert rc == code, err
    assert len(errors) == 1, err
    assert len(hints) == 1, err
    return err


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound but not listening, and held for the block (a port
    bound then closed could be taken meanwhile by a server of another test, in another pytest-xdist worker)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


DZI = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="png" Overlap="0" TileSize="256">'
    '<Size Width="{w}" Height="{h}"/></Image>'
)


_PREFIXES = itertools.count()


@pytest.fixture
def serve(server):
    """``serve(files, content_type=None) -> base URL``: files under a fresh prefix of the shared server."""
    def _serve(files, content_type=None, prefix=None):
        prefix = prefix or f"/hostile-{next(_PREFIXES)}/"
        return server.serve_files(prefix, files, content_type)

    return _serve


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (key, cert), made with the openssl CLI (skips
    the test when openssl is missing)."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"openssl CLI unavailable: {exc}")
    return key, cert
