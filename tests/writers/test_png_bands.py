"""The PNG writer's parallel deflate: bands joined into ONE zlib stream, decoded pixel-exactly by Pillow."""

import random
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dezoomify_nb.writers import png
from dezoomify_nb.writers.png import FILTERS, PNGWriter, adler32_combine, deflate_backend

BACKENDS = [name for name, _ in png._deflate_modules()]


class Strips:
    """An image served as strips of uneven heights (as a region or a last tile row gives)."""

    def __init__(self, image: np.ndarray, heights: list[int]):
        self.image = image
        self.height, self.width, self.channels = image.shape
        self.mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[self.channels]
        self.icc_profile = None
        self.heights = heights

    def strips(self):
        y = 0
        for h in self.heights:
            yield self.image[y : y + h]
            y += h
        assert y == self.height


def textured(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = ((x * 3 + y * 5) ^ (x * y >> 4)).astype(np.uint8)
    noise = rng.integers(0, 40, size=(h, w, c), dtype=np.uint8)
    return (base[:, :, None] + noise).astype(np.uint8)


def chunks(path) -> list[tuple[bytes, bytes]]:
    data = path.read_bytes()
    pos, out = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]))
        pos += 12 + n
    return out


def test_adler32_combine_matches_zlib():
    rnd = random.Random(5)
    for _ in range(50):
        a = rnd.randbytes(rnd.randint(0, 3000))
        b = rnd.randbytes(rnd.randint(0, 70000))
        assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("compression", [5, 40, 80])  # zlib levels 1, 6, 9
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_bands_make_one_zlib_stream_that_pillow_decodes_exactly(tmp_path, monkeypatch, backend, compression,
                                                                channels):
    monkeypatch.setattr(png, "CHUNK_BYTES", 5000)  # many bands, several per strip, priming across strips
    image = textured(230, 347, channels, seed=channels)
    path = tmp_path / "out.png"
    PNGWriter(deflate=backend).write(path, Strips(image, [64, 64, 1, 37, 64]), compression=compression)
    with Image.open(path) as im:
        got = np.asarray(im)
    np.testing.assert_array_equal(got.reshape(image.shape), image)
    idat = b"".join(body for kind, body in chunks(path) if kind == b"IDAT")
    z = zlib.decompressobj()
    raw = z.decompress(idat)
    assert z.eof and z.unused_data == b""  # exactly one zlib stream, its Adler-32 checked by zlib
    rows = image.reshape(230, -1)
    assert raw == png.filter_rows(rows, None, channels, FILTERS["up"]).tobytes()


def test_each_filter_survives_band_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(png, "CHUNK_BYTES", 3000)
    image = textured(120, 200, 3, seed=9)
    for name in FILTERS:
        path = tmp_path / f"{name}.png"
        PNGWriter(filter=name).write(path, Strips(image, [50, 50, 20]))
        with Image.open(path) as im:
            np.testing.assert_array_equal(np.asarray(im), image)


def test_backend_choice():
    assert deflate_backend(6, "zlib")[0] == "zlib" and deflate_backend(6, "zlib")[2] == 6
    name, _, level = deflate_backend(1)
    assert name == BACKENDS[0]  # the fastest installed one
    assert level == (2 if name in ("isal", "zlib-ng") else 1)
    assert deflate_backend(9)[0] != "isal"  # ISA-L's best level is not zlib's 9: asked-for small files use zlib
