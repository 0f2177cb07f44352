"""Every error path prints its ``hint:`` line: the known paths that had none (a Pillow writer on a full disk,
an unbounded generic grid, a forced dezoomer's broken metadata, end of input at a prompt), and any error
class raised without a hint (the class's default, the last resort)."""

from __future__ import annotations

import io
import re

import pytest

import dezoomify_nb as dz
from dezoomify_nb import errors
from dezoomify_nb.dezoomers import generic

from .conftest import DZI, FAST_API, cli_error
from .test_output import full_disk_folder

TRANSPORTS = ["aiohttp", "httpx"]


def _hint(err: str) -> str:
    return next(ln for ln in err.splitlines() if ln.startswith("hint:"))[5:].strip()


def _instances() -> list[errors.DezoomifyError]:
    """One instance of every public error class, made without a hint."""
    special = {
        errors.FetchError: lambda c: c("http://h/x", "HTTP 500 for http://h/x", status=500),
        errors.TileFetchError: lambda c: c("http://h/t", "HTTP 500 for http://h/t", status=500),
        errors.NoDezoomerFound: lambda c: c("http://h/x", [("iiif", "HTTP 404")]),
        errors.NeedsData: lambda c: c(["http://h/x"]),
        errors.DownloadError: lambda c: c("no tile", failed=1, total=1),
        errors.MemoryBudgetError: lambda c: c("too big", need=2, budget=1),
    }
    out = []
    for name in errors.__all__:
        cls = getattr(errors, name)
        out.append(special.get(cls, lambda c: c(f"{c.__name__} without a hint"))(cls))
    return out


@pytest.mark.parametrize("exc", _instances(), ids=lambda e: type(e).__name__)
def test_every_error_class_prints_a_hint(monkeypatch, capsys, tmp_path, exc):
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr("dezoomify_nb.api.open_all", fail)
    err = cli_error(capsys, tmp_path / "x.dzi")
    assert len(_hint(err)) > 20 and _hint(err) == errors.hint_for(exc)


def test_specific_hints_win_over_the_defaults():
    assert errors.hint_for(errors.MetadataError("m", hint="do this")) == "do this"
    assert errors.hint_for(errors.FetchError("u", "HTTP 403", status=403)) == errors.REFERER_HINT
    assert errors.hint_for(errors.MemoryBudgetError("m", need=2, budget=1)) == \
        errors.DEFAULT_HINTS[errors.ImageTooLargeError]  # the nearest class that has a default
    assert errors.hint_for(OSError(28, "No space left on device")) == errors.OS_HINT


@pytest.fixture(params=["real", "patched"])
def full_disk(request, tmp_path, monkeypatch):
    """A full disk for the Pillow writer (see :func:`.test_output.full_disk_folder`)."""
    yield from full_disk_folder(request, tmp_path, monkeypatch, hide_fileno=True)


def test_pillow_writer_on_a_full_disk(server, capsys, full_disk):
    d, how = full_disk
    out = d / "o.jpg"  # 1000x700 noise at quality 100: far over 64 KiB
    err = cli_error(capsys, "--compression", "0", server.url("dzi-png"), out)
    assert "No space left on device" in err, how
    assert "The disk is full" in _hint(err), err
    assert not list(d.iterdir())
    with pytest.raises(dz.WriterError) as info:
        dz.open(server.url("dzi-png"), **FAST_API).save(out, progress=False, compression=0)
    assert "The disk is full" in info.value.hint


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unbounded_generic_grid(server, capsys, tmp_path, transport):
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (4, 4)).save(png, format="PNG")
    body = png.getvalue()

    def every_tile(_server, raw_path, _headers):  # a placeholder for every index, as some servers do
        from dezoomify_nb.testing.tileserver import Response

        return Response(200, body, "image/png")

    server.add_route("/everywhere/", every_tile)
    template = server.base_url + "/everywhere/tile_{{X}}_{{Y}}.png"
    err = cli_error(capsys, "--transport", transport, "--dezoomer", "generic", template, tmp_path / "o.png")
    assert "the grid seems unbounded" in err
    assert _hint(err) == generic.UNBOUNDED_HINT
    assert server.count("/everywhere/") < 200  # found by a search, not by asking every index


def test_generic_first_tile_missing(server, capsys, tmp_path):
    template = server.base_url + "/nowhere-at-all/tile_{{X}}_{{Y}}.png"
    err = cli_error(capsys, "--dezoomer", "generic", template, tmp_path / "o.png")
    assert "could not be downloaded" in err and "tile (0, 0) must exist" in _hint(err)


def test_forced_dezoomer_with_broken_metadata(serve, capsys, tmp_path):
    base = serve({"a.dzi": DZI.format(w=100, h=100).replace('TileSize="256"', 'TileSize="0"')})
    err = cli_error(capsys, "--dezoomer", "deepzoom", base + "/a.dzi", tmp_path / "o.png")
    assert "invalid DZI TileSize 0" in err
    assert "deepzoom dezoomer (forced)" in _hint(err) and "--dezoomer auto" in _hint(err)


def test_end_of_input_at_the_level_prompt(server, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("dezoomify_nb.cli._interactive", lambda: True)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    err = cli_error(capsys, server.url("dzi-png"), tmp_path / "o.png")
    assert "error: reached end of input" in err
    assert re.search(r"--largest|--zoom-level", _hint(err))
    assert server.count("_files/") == 0
