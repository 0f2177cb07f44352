"""writer_for: the extension → writer table, and plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

import dezoomify_nb.writers as writers
from dezoomify_nb.errors import UnsupportedFormatError
from dezoomify_nb.writers import supported_extensions, writer_for
from dezoomify_nb.writers.base import Writer
from dezoomify_nb.writers.iiif import IIIFWriter
from dezoomify_nb.writers.omezarr import OMEZarrWriter
from dezoomify_nb.writers.pillow import JPEGWriter, PillowWriter
from dezoomify_nb.writers.png import PNGWriter
from dezoomify_nb.writers.tiff import TIFFWriter


@pytest.mark.parametrize(
    "arg,cls,fmt",
    [
        ("out.png", PNGWriter, None),
        ("OUT.PNG", PNGWriter, None),
        (Path("a/b.Png"), PNGWriter, None),
        (".png", PNGWriter, None),
        ("png", PNGWriter, None),
        ("x.jpg", JPEGWriter, "JPEG"),
        ("x.jpeg", JPEGWriter, "JPEG"),
        ("X.JPG", JPEGWriter, "JPEG"),
        ("jpg", JPEGWriter, "JPEG"),
        ("x.jfif", JPEGWriter, "JPEG"),
        ("x.tif", TIFFWriter, None),
        ("x.TIFF", TIFFWriter, None),
        ("x.iiif", IIIFWriter, None),
        ("x.zarr", OMEZarrWriter, None),
        ("x.ome.zarr", OMEZarrWriter, None),
        ("x.bmp", PillowWriter, "BMP"),
        ("x.webp", PillowWriter, "WEBP"),
        ("x.gif", PillowWriter, "GIF"),
        (".jp2", PillowWriter, "JPEG2000"),
        ("dir.v2/x.tga", PillowWriter, "TGA"),
    ],
)
def test_writer_for(arg, cls, fmt):
    w = writer_for(arg)
    assert isinstance(w, cls) and isinstance(w, Writer)
    if fmt:
        assert w.format == fmt


@pytest.mark.parametrize("arg", ["x.xyz", "noext", "dir.d/noext", ".", "x.h5", "x.grib", ""])
def test_unknown_extension(arg):
    if arg == "noext":  # a bare word is taken as an extension
        arg = "x.noext"
    with pytest.raises(UnsupportedFormatError) as e:
        writer_for(arg)
    assert ".png" in e.value.hint and ".jpg" in e.value.hint and ".tif" in e.value.hint


def test_supported_extensions():
    exts = supported_extensions()
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"} <= set(exts)
    assert ".h5" not in exts and exts == sorted(exts)


class FakeEntryPoint:
    def __init__(self, name, obj=None, exc=None):
        self.name, self.obj, self.exc = name, obj, exc

    def load(self):
        if self.exc:
            raise self.exc
        return self.obj


class DummyWriter(Writer):
    name = "dummy"
    suffixes = (".dum", "TGA", "TIF")

    def write(self, path, source, *, compression=5):
        Path(path).write_text("dummy")


@pytest.fixture
def fake_plugins(monkeypatch):
    eps = [FakeEntryPoint("dummy", DummyWriter), FakeEntryPoint("broken", exc=ImportError("no module named x"))]
    monkeypatch.setattr(writers, "entry_points", lambda group: eps if group == "dezoomify_nb.writers" else [])
    writers.plugin_writers.cache_clear()
    yield
    writers.plugin_writers.cache_clear()


def test_plugins_loaded_lazily_and_broken_one_warns(fake_plugins):
    with pytest.warns(RuntimeWarning, match="broken"):
        w = writer_for("x.dum")
    assert isinstance(w, DummyWriter)
    assert isinstance(writer_for("x.tga"), DummyWriter)  # plugins take precedence over Pillow
    assert isinstance(writer_for("x.png"), PNGWriter)  # but not over the built-in writers
    assert isinstance(writer_for("x.tif"), TIFFWriter)
    assert ".dum" in supported_extensions()


def test_plugins_not_loaded_for_builtins(monkeypatch):
    def boom(group):
        raise AssertionError("entry points read for a built-in format")

    monkeypatch.setattr(writers, "entry_points", boom)
    writers.plugin_writers.cache_clear()
    try:
        assert isinstance(writer_for("a.png"), PNGWriter)
        assert isinstance(writer_for("a.jpg"), JPEGWriter)
    finally:
        writers.plugin_writers.cache_clear()
