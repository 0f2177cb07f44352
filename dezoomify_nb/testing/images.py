"""Deterministic synthetic test images.

:func:`make_test_image` builds an image that has structure everywhere, so that a
tile that is misplaced, shifted by any amount, flipped or cropped is caught by an
exact comparison, while JPEG still compresses it reasonably:

* smooth per-channel gradients (monotonic in x and y, so flips are visible) plus
  slow sinusoidal ripples;
* a few filled discs and rectangles (sharp edges, seed-dependent);
* a per-pixel pseudo-random texture of amplitude 0..15 that repeats only with a
  period of 509 × 521 pixels (primes, so no tile grid ever lines up with it).

Everything is vectorised; an 8192 × 8192 RGB image takes well under 2 s.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_test_image"]

_NOISE_H = 509
_NOISE_W = 521
_NOISE_AMPLITUDE = 16  # texture values are 0..15; the base image stays <= 231


def make_test_image(width: int, height: int, *, seed: int = 0, channels: int = 3) -> np.ndarray:
    """Return a deterministic ``uint8`` array of shape ``(height, width, channels)``.

    ``channels`` is 1 (grey), 3 (RGB) or 4 (RGBA; the alpha channel varies
    smoothly between about 100 and 255).  The same arguments always give the
    same pixels.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if channels not in (1, 3, 4):
        raise ValueError(f"channels must be 1, 3 or 4, got {channels}")
    rng = np.random.default_rng(seed)
    colour_channels = 3 if channels >= 3 else 1
    out = np.empty((height, width, channels), dtype=np.uint8)

    x = np.arange(width, dtype=np.float32)
    y = np.arange(height, dtype=np.float32)
    fx = x / max(width - 1, 1)
    fy = y / max(height - 1, 1)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(colour_channels, 2)).astype(np.float32)
    # Per channel: a separable smooth base, each half in 0..115, sum <= 230.
    for c in range(colour_channels):
        gx = fx if c != 1 else 1.0 - fx  # channel 1 runs the other way
        a = 70.0 * gx + 22.0 * (1.0 + np.sin(x * (0.019 + 0.006 * c) + phases[c, 0]))
        b = 70.0 * fy + 22.0 * (1.0 + np.sin(y * (0.015 + 0.005 * c) + phases[c, 1]))
        np.add(a.astype(np.uint8)[None, :], b.astype(np.uint8)[:, None], out=out[..., c])

    # A few sharp-edged shapes, placed and coloured from the seed.
    n_shapes = 6
    for i in range(n_shapes):
        colour = rng.integers(0, 232, size=colour_channels, dtype=np.uint8)
        cx = rng.uniform(0, width)
        cy = rng.uniform(0, height)
        r = rng.uniform(0.04, 0.15) * min(width, height) + 1.0
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, width)
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        view = out[y0:y1, x0:x1, :colour_channels]
        if i % 2 == 0:  # disc
            dx = (np.arange(x0, x1, dtype=np.float32) - cx) ** 2
            dy = (np.arange(y0, y1, dtype=np.float32) - cy) ** 2
            mask = (dy[:, None] + dx[None, :]) <= r * r
            view[mask] = colour
        else:  # rectangle, half as tall as wide
            ym = (y1 - y0) // 4
            view[ym : (y1 - y0) - ym] = colour

    # Per-pixel texture, tiled with a prime period.
    noise = rng.integers(0, _NOISE_AMPLITUDE, size=(_NOISE_H, _NOISE_W, colour_channels), dtype=np.uint8)
    for ty in range(0, height, _NOISE_H):
        hy = min(_NOISE_H, height - ty)
        for tx in range(0, width, _NOISE_W):
            wx = min(_NOISE_W, width - tx)
            out[ty : ty + hy, tx : tx + wx, :colour_channels] += noise[:hy, :wx]

    if channels == 4:
        alpha_x = (60.0 * (1.0 + np.cos(x * 0.011))).astype(np.uint8)  # 0..120
        alpha_y = (17.0 * (1.0 + np.sin(y * 0.013))).astype(np.uint8)  # 0..34
        np.add(alpha_x[None, :], alpha_y[:, None], out=out[..., 3])
        np.add(out[..., 3], 100, out=out[..., 3])  # 100..254
    return out
