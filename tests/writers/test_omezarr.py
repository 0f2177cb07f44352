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
