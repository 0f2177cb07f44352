"""The harness itself catches what it promises to catch (so a green hostile test means something)."""

from __future__ import annotations

from .harness import Tripwires, run_isolated


def test_tripwires_see_a_read_of_the_secret_and_the_pipe(tmp_path):
    with Tripwires(tmp_path / "t") as wires:
        assert wires.tripped() == []
        code = f"open({str(wires.secret)!r}).read(); print(open({str(wires.fifo)!r}).readline().strip())"
        run = run_isolated(code=code, seconds=20)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == wires.token  # the pipe's reader is released, never hangs
        assert wires.tripped() == ["fifo", "secret"]


def test_fake_programs_and_rss_cap_and_time_limit(tmp_path):
    run = run_isolated(code="import subprocess; subprocess.run(['gs', '-q', 'x.eps'])", workdir=tmp_path / "a")
    assert run.programs_run == ["gs -q x.eps"]
    run = run_isolated(code="b = bytearray(400 * 2**20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(5)",
                       rss_mb=200, workdir=tmp_path / "b")
    assert run.killed == "rss"
    run = run_isolated(code="import time; time.sleep(30)", seconds=1, workdir=tmp_path / "c")
    assert run.killed == "time" and run.elapsed < 10


def test_the_cli_runs_under_the_default_cap(tmp_path):
    run = run_isolated(["--help"], workdir=tmp_path)
    assert run.returncode == 0 and "usage" in run.stdout.lower()
    run.assert_contained()
