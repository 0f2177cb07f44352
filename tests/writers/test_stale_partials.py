"""Leftover temporaries of killed runs (``.NAME.<random>.partial``) are removed by the next download to NAME:
only unlocked ones (a live writer, in any process, holds its temporary's flock), older than STALE_AFTER,
named exactly so, regular files or folders — never a symbolic link, never another name's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dezoomify_nb.writers import atomic
from dezoomify_nb.writers.atomic import Output, sweep_stale

pytestmark = pytest.mark.skipif(atomic.fcntl is None, reason="no flock on this system")

OLD = time.time() - 3600


def aged(path: Path, content: bytes | None = None) -> Path:
    if content is not None:
        path.write_bytes(content)
    os.utime(path, (OLD, OLD), follow_symlinks=False)
    return path


def test_old_unlocked_leftovers_of_this_name_are_removed(tmp_path):
    final = tmp_path / "map.png"
    file_left = aged(tmp_path / ".map.png.0badc0de.partial", b"half an image")
    dir_left = tmp_path / ".map.png.12345678.partial"
    dir_left.mkdir()
    (dir_left / "tile.jpg").write_bytes(b"x")
    aged(dir_left)
    young = tmp_path / ".map.png.abcdef01.partial"
    young.write_bytes(b"just created")
    kept = {
        young,
        aged(tmp_path / ".other.png.0badc0de.partial", b"keep"),  # another output's
        aged(tmp_path / ".map.png.0badc0de.old", b"keep"),  # not a partial
        aged(tmp_path / ".map.png.0BADC0DE.partial", b"keep"),  # not our token
        aged(tmp_path / "map.png.0badc0de.partial", b"keep"),  # not hidden: not ours
    }
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    link = tmp_path / ".map.png.feedface.partial"
    link.symlink_to(outside)
    aged(link)
    kept |= {link, outside}

    removed = sweep_stale(final)

    assert sorted(removed) == sorted([file_left, dir_left])
    assert not os.path.lexists(file_left) and not os.path.lexists(dir_left)
    assert all(os.path.lexists(p) for p in kept) and outside.read_bytes() == b"precious"


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dezoomify_nb.writers.atomic import Output
    out = Output(Path(sys.argv[1]), directory=sys.argv[2] == "dir").prepare()
    print(out.tmp, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_live_writers_temporary_is_kept_until_it_dies(tmp_path, kind):
    final = tmp_path / ("out.iiif" if kind == "dir" else "out.png")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")])}
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(final), kind], stdout=subprocess.PIPE, text=True,
                          env=env) as proc:
        try:
            check_sweeps_after_death(proc, final, kind)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


def check_sweeps_after_death(proc: subprocess.Popen, final: Path, kind: str) -> None:
    """The temporary of a live writer survives every sweep; once the writer is SIGKILLed, the next sweeps it."""
    tmp_path = final.parent
    assert proc.stdout is not None
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.parent == tmp_path and tmp.name.startswith(f".{final.name}.") and os.path.lexists(tmp)
    aged(tmp)  # old, but its writer is alive: another run to the same name leaves it alone
    assert sweep_stale(final) == []
    mine = Output(final, directory=kind == "dir").prepare()
    assert os.path.lexists(tmp) and mine.tmp != tmp
    mine.discard()
    proc.send_signal(signal.SIGKILL)  # the writer dies without cleaning up: the kernel drops its lock
    proc.wait(30)
    assert os.path.lexists(tmp)
    mine = Output(final, directory=kind == "dir").prepare()  # the next download sweeps it
    assert not os.path.lexists(tmp) and os.path.lexists(mine.tmp)
    assert sweep_stale(final, older_than=0) == []  # its own live temporary is never swept
    mine.discard()
    assert list(tmp_path.iterdir()) == []




def test_published_and_discarded_temporaries_release_their_locks(tmp_path):
    out = Output(tmp_path / "a.png").prepare()
    with out.active(), atomic.atomic_output(out.final) as f:
        f.write(b"image")
    assert out.publish() == tmp_path / "a.png"
    out = Output(tmp_path / "b.png").prepare()
    out.discard()
    with atomic.atomic_output(tmp_path / "c.png") as f:  # used alone: published at once
        f.write(b"image")
    with atomic._locks_guard:
        assert atomic._locks == {}
