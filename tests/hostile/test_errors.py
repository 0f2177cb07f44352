"""The exception tree is public and documented; the CLI maps it to the exit codes the README lists."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

import dezoomify_nb as dz
from dezoomify_nb import errors
from dezoomify_nb.cli import main

from .conftest import cli_error, run_cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_error_is_public_and_a_dezoomify_error():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.DezoomifyError), name
        assert name in errors.__doc__, f"{name} missing from the tree in errors.py"
        if name not in ("NeedsData", "WrongDezoomer", "DezoomerError"):  # internal control flow
            assert getattr(dz, name) is cls, f"dz.{name} is not exported"


def test_readme_lists_the_exit_codes_and_the_errors():
    section = README.split("## Errors and exit codes", 1)[1].split("\n## ", 1)[0]
    firsts = re.findall(r"^\| (\d+(?: / \d+)*) \|", section, re.M)
    codes = {code for cell in firsts for code in cell.split(" / ")}
    assert codes == {"0", "1", "2", "3", "130", "143", "129"}
    for name in ("FetchError", "NoDezoomerFound", "MetadataError", "DownloadError", "TileFetchError",
                 "WriterError", "LevelSelectionError"):
        assert name in section
    assert "Referer" in section and "--max-pixels" in section and "--overwrite" in section


def test_fetch_error_carries_url_status_and_hint_across_pickle():
    err = errors.FetchError("http://h/t.jpg", "HTTP 403 Forbidden for http://h/t.jpg", status=403)
    assert "Referer" in err.hint
    back = pickle.loads(pickle.dumps(err))
    assert (back.url, back.status, back.hint, str(back)) == (err.url, err.status, err.hint, str(err))
    tile = pickle.loads(pickle.dumps(errors.TileFetchError("u", "m", status=500)))
    assert isinstance(tile, errors.TileFetchError) and tile.status == 500


def test_no_dezoomer_found_with_a_403_suggests_a_referer():
    err = errors.NoDezoomerFound("http://h/x", [("iiif", "HTTP 403 Forbidden for http://h/x")])
    assert "Referer" in err.hint
    assert "Referer" not in errors.NoDezoomerFound("http://h/x", [("iiif", "HTTP 404 Not Found")]).hint


def test_exit_2_for_a_bad_command_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--parallelism", "zero", "x"])
    assert info.value.code == 2


def test_exit_3_for_an_internal_error(monkeypatch, capsys, tmp_path):
    def boom(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr("dezoomify_nb.api.open_all", boom)
    err = cli_error(capsys, tmp_path / "x.dzi", code=3)
    assert "internal error: RuntimeError: unexpected" in err


def test_exit_130_when_interrupted(monkeypatch, capsys, tmp_path):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("dezoomify_nb.api.open_all", interrupt)
    code, _, err = run_cli(capsys, tmp_path / "x.dzi")
    assert code == 130 and err.strip() == "error: interrupted"


def test_local_file_that_does_not_exist(capsys, tmp_path):
    err = cli_error(capsys, tmp_path / "missing.dzi")
    assert "No such file" in err
