"""OME-Zarr 0.5 writer: read back with ome-zarr-py (what napari uses) and with zarr; NGFF rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Multiscales, Reader
from pyramid_helpers import JPEG_KINDS, assert_close, expected_level

import dezoomify_nb as dz
from dezoomify_nb.errors import WriterError
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.writers import writer_for
from dezoomify_nb.writers.base import ArraySource
from dezoomify_nb.writers.omezarr import CHUNK, OMEZarrWriter
from dezoomify_nb.writers.pyramid import pyramid_sizes


def read_ome(path):
    nodes = list(Reader(parse_url(str(path)))())
    assert nodes, "ome-zarr-py found no image"
    node = nodes[0]
    assert any(isinstance(s, Multiscales) for s in node.specs)
    return node


@pytest.mark.parametrize("kind", ["dzi-png", "zoomify", "iiif3"])
def test_round_trip_with_ome_zarr_reader(server, source, tmp_path, kind):
    path = tmp_path / "img.ome.zarr"
    result = dz.open(server.url(kind)).save(path, progress=False)
    assert result.ok and path.is_dir()
    node = read_ome(path)
    assert [a["name"] for a in node.metadata["axes"]] == ["c", "y", "x"]
    sizes = pyramid_sizes(source.shape[1], source.shape[0], CHUNK)
    assert [tuple(d.shape) for d in node.data] == [(3, h, w) for w, h in sizes]
    assert node.metadata["channel_names"] == ["red", "green", "blue"]
    exact = kind not in JPEG_KINDS
    level0 = np.moveaxis(np.asarray(node.data[0]), 0, 2)
    assert_close(level0, source, exact=exact)
    for data, size in zip(node.data[1:], sizes[1:], strict=True):
        assert_close(np.moveaxis(np.asarray(data), 0, 2), expected_level(source, size), exact=False,
                     mean=3.0 if exact else 6.0)


def test_ngff_05_metadata(tmp_path):
    a = make_test_image(1500, 600, seed=2)
    path = tmp_path / "x.zarr"
    OMEZarrWriter().write(path, ArraySource(a, strip_height=200))
    meta = json.loads((path / "zarr.json").read_text())
    assert meta["zarr_format"] == 3 and meta["node_type"] == "group"
    ome = meta["attributes"]["ome"]
    assert ome["version"] == "0.5" and "version" not in ome["multiscales"][0]  # 0.5 moved it up
    ms = ome["multiscales"][0]
    assert ms["type"] == "2x2 mean"  # every lower level computed here
    assert [a["type"] for a in ms["axes"]] == ["channel", "space", "space"]
    sizes = [(1500, 600), (750, 300), (375, 150)]
    assert [d["path"] for d in ms["datasets"]] == ["0", "1", "2"]
    for d, (w, h) in zip(ms["datasets"], sizes, strict=True):
        (t,) = d["coordinateTransformations"]
        assert t == {"type": "scale", "scale": [1.0, 600 / h, 1500 / w]}
        arr = json.loads((path / d["path"] / "zarr.json").read_text())
        assert arr["shape"] == [3, h, w] and arr["dimension_names"] == ["c", "y", "x"]
    colours = [c["color"] for c in ome["omero"]["channels"]]
    assert colours == ["FF0000", "00FF00", "0000FF"]
    assert all(c["window"]["start"] == 0 and c["window"]["end"] == 255 for c in ome["omero"]["channels"])
    g = zarr.open_group(str(path), mode="r")
    np.testing.assert_array_equal(np.moveaxis(g["0"][:], 0, 2), a)


def test_multiscales_type_says_how_levels_were_made(server, tmp_path):
    from dezoomify_nb.writers.omezarr import downscaling
    from dezoomify_nb.writers.pyramid import SourceLevel, close_pyramid, local_pyramid

    # IIIF levels are ceil halvings: the server's own levels are copied, and the type says so
    path = tmp_path / "t.ome.zarr"
    assert dz.open(server.url("iiif3")).save(path, progress=False).ok
    assert json.loads((path / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]["type"] == \
        "server levels"
    computed = local_pyramid(ArraySource(make_test_image(900, 600, seed=1)), 128)
    try:
        server_level = SourceLevel(ArraySource(make_test_image(450, 300, seed=1)))
        assert downscaling(computed) == "2x2 mean"
        assert downscaling([computed[0], server_level, *computed[2:]]) == "server levels, then 2x2 mean"
        assert downscaling([computed[0], server_level]) == "server levels"
        assert downscaling(computed[:1]) == "2x2 mean"  # a single level
    finally:
        close_pyramid(computed)


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_alpha(tmp_path, channels):
    a = make_test_image(700, 300, seed=4, channels=channels)
    path = tmp_path / "g.ome.zarr"
    writer_for(path).write(path, ArraySource(a, strip_height=77), compression=0)
    node = read_ome(path)
    got = np.moveaxis(np.asarray(node.data[0]), 0, 2)
    np.testing.assert_array_equal(got, a if a.ndim == 3 else a[:, :, None])
    assert len(node.data) == 2


class FailingSource(ArraySource):
    def strips(self):
        it = super().strips()
        yield next(it)
        raise RuntimeError("tile server gone")


def test_failure_leaves_nothing_and_existing_folder_is_kept(tmp_path, source):
    path = tmp_path / "f.zarr"
    with pytest.raises(RuntimeError):
        OMEZarrWriter().write(path, FailingSource(source, strip_height=256))
    assert list(tmp_path.iterdir()) == []
    path.mkdir()
    (path / "keep.txt").write_text("mine")
    with pytest.raises(WriterError):
        OMEZarrWriter().write(path, ArraySource(source))
    assert (path / "keep.txt").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr"]


# --- chunks written directly (not through zarr): same files as zarr writes, pixel for pixel ---------


class GivenLevels:
    """A level source whose ``pyramid()`` gives its own arrays (not halvings), in odd strip heights."""

    icc_profile = None

    def __init__(self, levels: list[np.ndarray], strip_height: int = 77) -> None:
        self.levels = levels
        self.height, self.width, self.channels = levels[0].shape
        self.mode = {1: "L", 3: "RGB", 4: "RGBA"}[self.channels]
        self.strip_height = strip_height

    def strips(self):
        return ArraySource(self.levels[0], self.strip_height).strips()

    def pyramid(self, tile):
        assert tile == CHUNK
        return [ArraySource(a, strip_height=self.strip_height + i) for i, a in enumerate(self.levels)]


def given_levels(width, height, channels, seed=0):
    """Random levels of the pyramid sizes; level 0's first chunk and a whole chunk row are zero."""
    rng = np.random.default_rng(seed)
    levels = [rng.integers(0, 256, (h, w, channels), dtype=np.uint8) for w, h in pyramid_sizes(width, height, CHUNK)]
    levels[0][:CHUNK, :CHUNK] = 0
    levels[0][CHUNK:] = 0
    return levels


def chunk_files(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.relative_to(path).as_posix() != "zarr.json"}


@pytest.mark.parametrize("channels", [3, 1, 4])
@pytest.mark.parametrize("compression", [0, 50])
def test_levels_read_back_pixel_exact(tmp_path, channels, compression):
    levels = given_levels(1000, 777, channels, seed=channels)
    path = tmp_path / "p.ome.zarr"
    OMEZarrWriter().write(path, GivenLevels(levels), compression=compression)
    g = zarr.open_group(str(path), mode="r")
    assert sorted(g.array_keys()) == [str(i) for i in range(len(levels))] == ["0", "1"]
    for i, want in enumerate(levels):
        got = g[str(i)]
        assert got.shape == (channels, *want.shape[:2]) and got.chunks == (channels, CHUNK, CHUNK)
        np.testing.assert_array_equal(np.moveaxis(got[:], 0, 2), want)
    assert not (path / "0" / "c" / "0" / "0" / "0").exists()  # all zero: skipped, as zarr does
    assert not (path / "0" / "c" / "0" / "1").exists()
    node = read_ome(path)
    for data, want in zip(node.data, levels, strict=True):
        np.testing.assert_array_equal(np.moveaxis(np.asarray(data), 0, 2), want)


@pytest.mark.parametrize("compression", [0, 5, 90])
def test_same_files_as_zarr_writes(tmp_path, compression):
    """Every chunk file (key, bytes) and array zarr.json is what zarr itself writes for these arrays."""
    from zarr.codecs import ZstdCodec

    from dezoomify_nb.writers.omezarr import zstd_level

    levels = given_levels(1300, 1100, 3, seed=9)
    ours = tmp_path / "ours.zarr"
    OMEZarrWriter().write(ours, GivenLevels(levels, strip_height=300), compression=compression)
    ref = tmp_path / "ref.zarr"
    g = zarr.open_group(store=str(ref), mode="w", zarr_format=3)
    z = zstd_level(compression)
    for i, a in enumerate(levels):
        arr = g.create_array(str(i), shape=(3, *a.shape[:2]), dtype="uint8", chunks=(3, CHUNK, CHUNK),
                             compressors=[ZstdCodec(level=z)] if z else None, fill_value=0,
                             dimension_names=["c", "y", "x"])
        arr[:] = np.moveaxis(a, 2, 0)
    want = chunk_files(ref)
    assert sorted(k for k in want if k.startswith("0/c/")) == ["0/c/0/0/1", "0/c/0/0/2"]  # the rest is zero
    assert chunk_files(ours) == want


def test_written_through_zarr_when_codecs_are_unexpected(tmp_path, monkeypatch):
    monkeypatch.setattr("dezoomify_nb.writers.omezarr.chunk_encoder", lambda arr: None)
    levels = given_levels(1000, 777, 3)
    path = tmp_path / "z.ome.zarr"
    OMEZarrWriter().write(path, GivenLevels(levels), compression=5)
    g = zarr.open_group(str(path), mode="r")
    for i, want in enumerate(levels):
        np.testing.assert_array_equal(np.moveaxis(g[str(i)][:], 0, 2), want)


class FailingLevel(ArraySource):
    def __init__(self, array, strip_height, after):
        super().__init__(array, strip_height=strip_height)
        self.after = after

    def strips(self):
        for n, strip in enumerate(super().strips()):
            if n == self.after:
                raise RuntimeError("tile server gone")
            yield strip


@pytest.mark.parametrize("level, after", [(0, 3), (0, 12), (1, 2)])
def test_source_failing_midway_leaves_no_folder(tmp_path, level, after):
    levels = given_levels(1000, 1500, 3)
    src = GivenLevels(levels)
    given = src.pyramid(CHUNK)
    given[level] = FailingLevel(levels[level], 100, after)
    src.pyramid = lambda tile: given
    with pytest.raises(RuntimeError, match="tile server gone"):
        OMEZarrWriter().write(tmp_path / "f.ome.zarr", src)
    assert list(tmp_path.iterdir()) == []


def test_encoder_failing_leaves_no_folder(tmp_path, monkeypatch):
    import dezoomify_nb.writers.omezarr as omezarr

    real = omezarr.chunk_encoder
    calls = []

    def failing(arr):
        encode = real(arr)

        def enc(chunk):
            calls.append(1)
            if len(calls) == 4:
                raise OSError("disk full")
            return encode(chunk)
        return enc

    monkeypatch.setattr(omezarr, "chunk_encoder", failing)
    with pytest.raises(OSError, match="disk full"):
        OMEZarrWriter().write(tmp_path / "e.ome.zarr", GivenLevels(given_levels(3000, 1200, 3)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("rows", [-1, 1, 300])
def test_level_with_wrong_height_is_an_error(tmp_path, rows):
    levels = given_levels(1000, 777, 3)
    src = GivenLevels(levels)
    given = src.pyramid(CHUNK)
    bad = np.zeros((levels[1].shape[0] + rows, *levels[1].shape[1:]), np.uint8)
    given[1] = ArraySource(bad, strip_height=100)
    given[1].height = levels[1].shape[0]
    src.pyramid = lambda tile: given
    with pytest.raises(WriterError, match="level 1: got"):
        OMEZarrWriter().write(tmp_path / "h.ome.zarr", src)
    assert list(tmp_path.iterdir()) == []


class Generated:
    """A tall RGB level made strip by strip (never held whole), for the memory bound."""

    channels, mode, icc_profile = 3, "RGB", None

    def __init__(self, width, height):
        self.width, self.height = width, height

    def strips(self):
        for y in range(0, self.height, 256):
            s = np.empty((min(256, self.height - y), self.width, 3), np.uint8)
            s[:] = np.arange(self.width, dtype=np.uint8)[None, :, None] + np.uint8(y % 251)
            yield s

    def pyramid(self, tile):
        return [Generated(-(-self.width >> i), -(-self.height >> i)) for i, _ in
                enumerate(pyramid_sizes(self.width, self.height, tile))]


def test_memory_stays_within_the_estimate(tmp_path, monkeypatch):
    """Chunks waiting for the workers are bounded: the peak does not grow with the image's height."""
    import time
    import tracemalloc

    import dezoomify_nb.writers.omezarr as omezarr

    real = omezarr.chunk_encoder

    def slow(arr):  # workers slower than the source, so that chunks queue up to the bound
        encode = real(arr)
        return lambda chunk: time.sleep(0.02) or encode(chunk)

    monkeypatch.setattr(omezarr, "chunk_encoder", slow)
    w, h = 2048, 8192
    estimate = OMEZarrWriter().memory_estimate(w, h, 3)
    assert estimate < w * h * 3  # less than the image: a bound worth testing
    tracemalloc.start()
    try:
        OMEZarrWriter().write(tmp_path / "m.ome.zarr", Generated(w, h), compression=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < estimate, (peak, estimate)
    g = zarr.open_group(str(tmp_path / "m.ome.zarr"), mode="r")
    np.testing.assert_array_equal(np.moveaxis(g["0"][:, 4000:4100, :], 0, 2),
                                  np.concatenate(list(Generated(w, h).strips()))[4000:4100])
