"""Output path problems: missing folder, no permission, disk full, existing files, killed runs."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.writers import base as writers_base

from .conftest import FAST_API, cli_error, run_cli


def _mount_tmpfs(path: Path, options: str) -> bool:
    """Mount a tmpfs on ``path`` (root only); False when that is not possible here."""
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture(params=["real", "patched"])
def readonly_dir(request, tmp_path, monkeypatch):
    """A folder nobody can write in: chmod 555 (non-root) or a read-only tmpfs (root, which ignores
    permission bits); the "patched" variant (and the fallback) makes os.open raise EACCES there."""
    d = tmp_path / "ro"
    real = request.param == "real"
    if real and os.geteuid() != 0:
        d.mkdir()
        d.chmod(0o555)
        yield d, "chmod"
        d.chmod(0o755)
    elif real and _mount_tmpfs(d, "ro,size=64k"):
        yield d, "tmpfs"
        _umount(d)
    else:
        d.mkdir()
        real_open = os.open

        def deny(path, *args, **kwargs):
            if str(path).startswith(str(d)):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", deny)
        yield d, "patched"


def full_disk_folder(request, tmp_path, monkeypatch, *, hide_fileno: bool = False):
    """A folder whose disk is full after 64 KiB: a 64 KiB tmpfs (root); the "patched" variant (and the
    fallback) makes the writers' output file raise ENOSPC past 64 KiB. ``hide_fileno``: that file has no
    ``fileno`` (Pillow's encoders then write through it rather than to the descriptor)."""
    d = tmp_path / "full"
    if request.param == "real" and _mount_tmpfs(d, "size=64k"):
        yield d, "tmpfs"
        _umount(d)
        return
    d.mkdir()
    real = writers_base.atomic_output

    class Full:
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, data):
            self.n += len(data)
            if self.n > 65536:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.f.write(data)

        def __getattr__(self, name):
            if hide_fileno and name == "fileno":
                raise AttributeError(name)
            return getattr(self.f, name)

    import contextlib

    @contextlib.contextmanager
    def atomic(path):
        with real(path) as f:
            yield Full(f)

    monkeypatch.setattr(writers_base, "atomic_output", atomic)
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("dezoomify_nb.writers.") and hasattr(mod, "atomic_output"):
            monkeypatch.setattr(mod, "atomic_output", atomic)
    yield d, "patched"


@pytest.fixture(params=["real", "patched"])
def full_disk(request, tmp_path, monkeypatch):
    yield from full_disk_folder(request, tmp_path, monkeypatch)


def test_missing_directory(server, capsys, tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "o.png"
    err = cli_error(capsys, server.url("dzi-png"), out)
    assert "Cannot create the output file" in err and "No such file or directory" in err
    assert server.count("_files/") == 0  # refused before any tile was fetched
    with pytest.raises(dz.WriterError):
        dz.open(server.url("dzi-png"), **FAST_API).save(out, progress=False)


def test_no_permission(server, capsys, readonly_dir):
    d, how = readonly_dir
    err = cli_error(capsys, server.url("dzi-png"), d / "o.png")
    assert "Cannot create the output file" in err, how
    assert server.count("_files/") == 0
    with pytest.raises(dz.WriterError):
        dz.open(server.url("dzi-png"), **FAST_API).save(d / "o.png", progress=False)


def test_disk_full(server, capsys, full_disk):
    d, how = full_disk
    out = d / "o.png"  # 1000x700 noise: ~2 MB of PNG, far over 64 KiB
    err = cli_error(capsys, "--compression", "0", server.url("dzi-png"), out)
    assert "No space left on device" in err, how
    assert not out.exists() and not list(d.iterdir())  # placeholder released, .partial removed
    with pytest.raises(dz.WriterError) as info:
        dz.open(server.url("dzi-png"), **FAST_API).save(out, progress=False, compression=0)
    assert "No space left" in str(info.value) and info.value.hint
    assert not list(d.iterdir())


def test_disk_full_with_overwrite_keeps_the_old_file(server, full_disk):
    d, _ = full_disk
    out = d / "o.png"
    out.write_bytes(b"old image")
    with pytest.raises(dz.WriterError):
        dz.open(server.url("dzi-png"), **FAST_API).save(out, progress=False, compression=0, overwrite=True)
    assert out.read_bytes() == b"old image"


def test_output_is_a_directory(server, capsys, tmp_path):
    (tmp_path / "d.png").mkdir()
    err = cli_error(capsys, server.url("dzi-png"), tmp_path / "d.png")
    assert "is a directory" in err


# --- never overwrite without being asked -------------------------------------------------------------

def test_existing_file_is_not_overwritten(server, capsys, tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"precious")
    err = cli_error(capsys, server.url("dzi-png"), out)
    assert "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"precious"
    assert server.count("_files/") == 0  # refused before any download
    with pytest.raises(dz.WriterError):
        dz.open(server.url("dzi-png"), **FAST_API).save(out, progress=False)
    assert out.read_bytes() == b"precious"


def test_overwrite_flag(server, capsys, tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"precious")
    code, _, err = run_cli(capsys, "--overwrite", server.url("dzi-png"), out)
    assert code == 0, err
    assert np.asarray(Image.open(out).convert("RGB")).shape == (700, 1000, 3)
    out.write_bytes(b"again")
    dz.open(server.url("dzi-png"), **FAST_API).save(out, progress=False, overwrite=True)
    assert out.stat().st_size > 1000


def test_default_names_are_numbered(server, tmp_path):
    img = dz.open(server.url("dzi-png"), **FAST_API)
    first = img.save(directory=tmp_path, progress=False, level=len(img.levels) - 1).path
    second = img.save(directory=tmp_path, progress=False, level=len(img.levels) - 1).path
    assert first != second and second.name.endswith("_0001" + first.suffix)


# --- a killed run never leaves a truncated file under the final name ----------------------------------

def test_killed_run_leaves_no_truncated_file(server, tmp_path):
    out = tmp_path / f"k-{uuid.uuid4().hex[:6]}.png"
    server.delay("_files/10/", 0.3, times=None)  # 12 tiles, one at a time: several seconds
    cmd = [sys.executable, "-m", "dezoomify_nb", "-n", "1", "-i", "0ms", "--largest", server.url("dzi-png"), str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def temporaries() -> list[Path]:
        return sorted(tmp_path.glob(f".{out.name}.*.partial"))

    try:
        deadline = time.monotonic() + 60
        while not (temporaries() and server.count("_files/10/") >= 6) and proc.poll() is None:
            assert time.monotonic() < deadline, "the download never started writing"
            time.sleep(0.02)
        assert proc.poll() is None, "finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    server.clear_faults()
    # nothing under the final name (no placeholder either): only the hidden temporary of the killed run
    assert not os.path.lexists(out)
    assert len(temporaries()) == 1 and not out.with_name(out.name + ".partial").exists()
    # running again writes the complete image, under a temporary of its own; the leftover is young (a
    # writer may have just created it and not yet locked it): kept
    dz.open(server.url("dzi-png"), **FAST_API).save(out, progress=False)
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")),
                                  np.asarray(server.level_image("dzi-png", 0))[..., :3])
    assert len(temporaries()) == 1
    # once older than STALE_AFTER and unlocked (its writer is dead), the next download to that name removes it
    stamp = time.time() - 3600
    os.utime(temporaries()[0], (stamp, stamp))
    dz.open(server.url("dzi-png"), **FAST_API).save(out, progress=False, overwrite=True)
    assert temporaries() == [] and sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_overwrite_keeps_the_old_file_when_no_tile_comes(server, capsys, tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"old image")
    server.fail("_files/", times=None, status=403)
    err = cli_error(capsys, "--overwrite", server.url("dzi-png"), out)
    assert "Could not get any tile" in err and "Referer" in err
    assert out.read_bytes() == b"old image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]  # no temporary left behind
