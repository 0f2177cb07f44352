"""``save_all`` makes the folder it is asked to write into (a notebook's ``save_all("out/pages")`` failed
each image with "No such file or directory"); a folder that cannot be made fails the run in one clear error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.errors import WriterError
from dezoomify_nb.testing.gallery import SampleGallery


@pytest.fixture(scope="module")
def gallery():
    with SampleGallery(pages=2, width=500, height=300, lossless=True) as g:
        yield g


def test_save_all_makes_its_folder(gallery, tmp_path):
    folder = tmp_path / "not" / "yet" / "there"
    summary = dz.open(gallery.manifest_url, min_interval=0).save_all(folder, format="png", progress=False)
    assert [item.status for item in summary.items] == ["done", "done"], summary.items
    for page, item in enumerate(summary.items):
        assert item.path is not None and item.path.parent == folder
        assert np.array_equal(np.asarray(Image.open(item.path).convert("RGB")), gallery.image(page))


def test_save_all_outfile_makes_its_folder(gallery, tmp_path):
    summary = dz.open(gallery.manifest_url, min_interval=0).save_all(
        outfile=tmp_path / "new" / "page.png", progress=False)
    assert [p.name for p in sorted((tmp_path / "new").glob("*.png"))] == ["page_0001.png", "page_0002.png"]
    assert np.array_equal(np.asarray(Image.open(summary.items[1].path).convert("RGB")), gallery.image(1))


def test_a_folder_that_cannot_be_made_is_one_error(gallery, tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(WriterError, match="Cannot create the output folder") as err:
        dz.open(gallery.manifest_url, min_interval=0).save_all(tmp_path / "file" / "sub", progress=False)
    assert err.value.hint
