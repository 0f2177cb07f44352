"""Trees made by libvips ``dzsave`` (Deep Zoom, Zoomify, IIIF 2 and 3 level 0), served by a plain static
server: full and smaller levels downloaded, a lazy window read, pixels compared with the source image and
the tile requests of the window counted (only the tiles under it, named as libvips named its files)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.cli import main as cli_main
from dezoomify_nb.testing import make_test_image

from .conftest import require, run

pytestmark = pytest.mark.conformance

W, H = 1500, 1000
FAST = {"parallelism": 8, "min_interval": 0, "retries": 0, "timeout": 20}


@dataclass(frozen=True)
class Case:
    name: str
    layout: str  # vips dzsave --layout
    overlap: int
    tile: int
    suffix: str  # .jpg or .png

    @property
    def exact(self) -> bool:
        return self.suffix == ".png"

    @property
    def entry(self) -> str:
        if self.layout == "dz":
            return f"{self.name}.dzi"
        if self.layout == "zoomify":
            return f"{self.name}/ImageProperties.xml"
        return f"{self.name}/info.json"

    def level_size(self, k: int) -> tuple[int, int]:
        return math.ceil(W / 2**k), math.ceil(H / 2**k)

    def tile_paths(self, k: int, box: tuple[int, int, int, int]) -> set[str]:
        """The files under ``box = (x0, y0, x1, y1)`` of level ``k`` (0 = full size), as libvips names them."""
        x0, y0, x1, y1 = box
        t = self.tile
        cols, rows = range(x0 // t, (x1 - 1) // t + 1), range(y0 // t, (y1 - 1) // t + 1)
        lw, lh = self.level_size(k)
        out = set()
        for r in rows:
            for c in cols:
                if self.layout == "dz":
                    top = math.ceil(math.log2(max(W, H)))
                    out.add(f"{self.name}_files/{top - k}/{c}_{r}{self.suffix}")
                elif self.layout == "zoomify":
                    sizes = [self.level_size(j) for j in range(10)]
                    n = next(j for j, (w, h) in enumerate(sizes) if w <= t and h <= t) + 1
                    z = n - 1 - k
                    below = sum(math.ceil(sizes[j][0] / t) * math.ceil(sizes[j][1] / t) for j in range(k + 1, n))
                    index = below + r * math.ceil(lw / t) + c
                    out.add(f"{self.name}/TileGroup{index // 256}/{z}-{c}-{r}.jpg")
                else:
                    sf = 2**k
                    rx, ry = c * t * sf, r * t * sf
                    rw, rh = min(t * sf, W - rx), min(t * sf, H - ry)
                    sw, sh = math.ceil(rw / sf), math.ceil(rh / sf)
                    size = f"{sw}," if self.layout == "iiif" else f"{sw},{sh}"
                    out.add(f"{self.name}/{rx},{ry},{rw},{rh}/{size}/0/default.jpg")
        return out


CASES = [
    Case("dz-o1-t254-jpg", "dz", 1, 254, ".jpg"),  # libvips' defaults
    Case("dz-o0-t254-png", "dz", 0, 254, ".png"),
    Case("dz-o1-t256-png", "dz", 1, 256, ".png"),
    Case("dz-o0-t512-jpg", "dz", 0, 512, ".jpg"),
    Case("zoomify", "zoomify", 0, 256, ".jpg"),
    Case("iiif2", "iiif", 0, 512, ".jpg"),
    Case("iiif3", "iiif3", 0, 256, ".jpg"),
]
IDS = [c.name for c in CASES]


def source_image() -> np.ndarray:
    """A smooth test image with 1-px lines every 37/41 px: a misplaced or overlapping tile shows."""
    a = make_test_image(W, H, seed=11)
    a[:, 5::37] = (0, 0, 0)
    a[7::41, :] = (255, 255, 255)
    return a


@pytest.fixture(scope="module")
def vips_trees(static_root):
    require("vips")
    root, srv = static_root
    src = source_image()
    Image.fromarray(src).save(root / "source.png")
    for c in CASES:
        args = ["--layout", c.layout, "--tile-size", str(c.tile), "--overlap", str(c.overlap)]
        args += ["--suffix", c.suffix + ("[Q=90]" if c.suffix == ".jpg" else "")]
        if c.layout.startswith("iiif"):
            args += ["--id", srv.base_url]
        run("vips", "dzsave", root / "source.png", root / c.name, *args)
    # the JPEG noise floor: libvips' own JPEG of the whole source at the tiles' quality
    run("vips", "copy", root / "source.png", f"{root / 'floor.jpg'}[Q=90]")
    floor = float(np.abs(read_png(root / "floor.jpg").astype(np.int16) - src.astype(np.int16)).mean())
    assert 0.5 < floor < 6, floor
    return src, srv, floor


def assert_pixels(got: np.ndarray, want: np.ndarray, floor: float | None) -> None:
    """Exact (``floor=None``: PNG tiles), else within the JPEG noise ``floor`` and not shifted."""
    assert got.shape == want.shape, (got.shape, want.shape)
    if floor is None:
        np.testing.assert_array_equal(got, want)
        return
    err = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert err.mean() < 1.1 * floor + 0.2, f"mean error {err.mean():.2f}, JPEG floor {floor:.2f}"
    # shifted by one pixel, the lines would cost more than the JPEG noise does
    for axis in (0, 1):
        shifted = np.abs(np.roll(got, 1, axis=axis).astype(np.int16) - want.astype(np.int16))
        assert err.mean() < 0.7 * shifted.mean(), (axis, err.mean(), shifted.mean())


def reduced(src: np.ndarray, k: int) -> np.ndarray:
    size = (math.ceil(W / 2**k), math.ceil(H / 2**k))
    return np.asarray(Image.fromarray(src).resize(size, Image.Resampling.BOX))


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_full_size_with_the_cli(vips_trees, tmp_path, case):
    src, srv, floor = vips_trees
    out = tmp_path / "full.png"
    srv.reset()
    assert cli_main([srv.url(case.entry), str(out), "--largest", "-n", "8", "-i", "0", "-r", "0"]) == 0
    assert all(status == 200 for _, status in srv.log), [e for e in srv.log if e[1] != 200]
    assert_pixels(read_png(out), src, None if case.exact else floor)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_smaller_level_and_lazy_windows(vips_trees, tmp_path, case):
    src, srv, floor = vips_trees
    image = dz.open(srv.url(case.entry), **FAST)
    assert (image.width, image.height) == (W, H)
    sizes = [lv.size for lv in image.levels][:4]
    assert len(sizes) >= 2 and sizes == [case.level_size(k) for k in range(len(sizes))], sizes

    # a smaller level, saved: the producer's level (a 2×2 mean of the source, as ours is); libvips' IIIF
    # info.json lists scale factors 1 and 2 only for 512-px tiles (it writes the 1/4 level all the same)
    k = min(2, len(sizes) - 1)
    srv.reset()
    result = image.save(tmp_path / "small.png", level=k, progress=False)
    assert result.ok
    got = read_png(tmp_path / "small.png")
    want = reduced(src, k)
    assert got.shape == want.shape
    assert np.abs(got.astype(np.int16) - want.astype(np.int16)).mean() < (1.0 if case.exact else floor)
    assert all(status == 200 for _, status in srv.log), [e for e in srv.log if e[1] != 200]

    # lazy windows: only the tiles under them are fetched, once each
    for k, box in ((0, (300, 200, 1100, 700)), (1, (130, 40, 600, 300))):
        x0, y0, x1, y1 = box
        srv.reset()
        window = image.to_dask(k)[y0:y1, x0:x1].compute()
        want = src[y0:y1, x0:x1] if k == 0 else reduced(src, k)[y0:y1, x0:x1]
        if k == 0:
            assert_pixels(window, want, None if case.exact else floor)
        else:
            assert np.abs(window.astype(np.int16) - want.astype(np.int16)).mean() < (1.0 if case.exact else floor)
        fetched = [p.lstrip("/") for p in srv.paths()]
        assert sorted(fetched) == sorted(case.tile_paths(k, box)), (k, sorted(fetched))
        assert all(status == 200 for _, status in srv.log)
