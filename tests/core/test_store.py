"""The zarr tile store over local tile files: exact pixels, overlap, edges, failures, pickling."""

import pickle

import numpy as np
import pytest
import zarr
from PIL import Image as PILImage

from dezoomify_nb.errors import TileFetchError
from dezoomify_nb.lazy import events
from dezoomify_nb.lazy.store import TilePyramidStore
from dezoomify_nb.model import Image, TemplateLevel
from dezoomify_nb.net import NetConfig

NET = NetConfig(min_interval=0, retries=0, local_root="/")  # local tiles, anywhere


def _cut(img, ts, overlap, folder):
    h, w = img.shape[:2]
    for r in range(-(-h // ts)):
        for c in range(-(-w // ts)):
            y0, x0 = max(0, r * ts - overlap), max(0, c * ts - overlap)
            y1, x1 = min(h, (r + 1) * ts + overlap), min(w, (c + 1) * ts + overlap)
            PILImage.fromarray(img[y0:y1, x0:x1]).save(folder / f"{c}_{r}.png")


@pytest.fixture
def image():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (301, 517, 3), dtype=np.uint8)


@pytest.mark.parametrize("overlap", [0, 1, 3])
def test_full_level_is_pixel_exact(tmp_path, image, overlap):
    _cut(image, 128, overlap, tmp_path)
    lv = TemplateLevel(517, 301, 128, 128, overlap=overlap, template=str(tmp_path / "{col}_{row}.png"))
    store = TilePyramidStore(Image((lv,)), NET)
    arr = zarr.open_array(store=store, path="0", mode="r")
    assert arr.shape == (301, 517, 3) and arr.chunks == (128, 128, 3)
    np.testing.assert_array_equal(arr[:], image)
    np.testing.assert_array_equal(arr[100:200, 250:400], image[100:200, 250:400])


def test_modes(tmp_path, image):
    _cut(image, 128, 0, tmp_path)
    lv = TemplateLevel(517, 301, 128, 128, template=str(tmp_path / "{col}_{row}.png"))
    gray = zarr.open_array(store=TilePyramidStore(Image((lv,)), NET, mode="L"), path="0", mode="r")[:]
    expected = np.asarray(PILImage.fromarray(image).convert("L"))
    np.testing.assert_array_equal(gray[:, :, 0], expected)
    rgba = zarr.open_array(store=TilePyramidStore(Image((lv,)), NET, mode="RGBA"), path="0", mode="r")[:]
    assert (rgba[:, :, 3] == 255).all()


def test_missing_tile_raises_or_fills(tmp_path, image):
    _cut(image, 128, 0, tmp_path)
    (tmp_path / "1_1.png").unlink()
    lv = TemplateLevel(517, 301, 128, 128, template=str(tmp_path / "{col}_{row}.png"))
    with pytest.raises(TileFetchError):
        zarr.open_array(store=TilePyramidStore(Image((lv,)), NET), path="0", mode="r")[:]
    store = TilePyramidStore(Image((lv,)), NET, on_error="fill")
    got = zarr.open_array(store=store, path="0", mode="r")[:]
    assert (got[128:256, 128:256] == 0).all()
    np.testing.assert_array_equal(got[:128], image[:128])
    assert len(events.stats(store.token).failed) == 1


def test_undecodable_tile_is_a_failure(tmp_path, image):
    _cut(image, 128, 0, tmp_path)
    (tmp_path / "0_0.png").write_bytes(b"<html>not an image</html>")
    lv = TemplateLevel(517, 301, 128, 128, template=str(tmp_path / "{col}_{row}.png"))
    with pytest.raises(TileFetchError, match="Invalid content"):
        zarr.open_array(store=TilePyramidStore(Image((lv,)), NET), path="0", mode="r")[:128, :128]


def test_store_pickles_as_a_recipe(tmp_path, image):
    _cut(image, 128, 0, tmp_path)
    lv = TemplateLevel(517, 301, 128, 128, template=str(tmp_path / "{col}_{row}.png"))
    store = TilePyramidStore(Image((lv,), title="t"), NET)
    clone = pickle.loads(pickle.dumps(store))
    assert clone == store and hash(clone) == hash(store)
    np.testing.assert_array_equal(zarr.open_array(store=clone, path="0", mode="r")[:], image)


def test_group_metadata_and_malformed_keys(tmp_path, image):
    lv0 = TemplateLevel(517, 301, 128, 128, template="{col}_{row}")
    lv1 = TemplateLevel(259, 151, 128, 128, template="{col}_{row}")
    store = TilePyramidStore(Image((lv1, lv0), title="T"), NET)
    group = zarr.open_group(store=store, mode="r")
    ms = group.attrs["multiscales"][0]
    assert [d["path"] for d in ms["datasets"]] == ["0", "1"]
    assert group["0"].shape == (301, 517, 3) and group["1"].shape == (151, 259, 3)
    with pytest.raises(KeyError):
        store._parse_chunk_key("0/c/0/0")
    with pytest.raises(KeyError):
        store._parse_chunk_key("0/c/99/0/0")
