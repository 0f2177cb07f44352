"""Parsing IIIF Image API request parameters (region and size), for the loopback test server."""

from __future__ import annotations

import math
import re

from ._http import _BadRequest


def parse_region(s: str, W: int, H: int) -> tuple[int, int, int, int]:
    """An IIIF region parameter (``full``, ``square``, ``x,y,w,h``, ``pct:…``) clipped to the image."""
    if s == "full":
        return 0, 0, W, H
    if s == "square":
        side = min(W, H)
        return (W - side) // 2, (H - side) // 2, side, side
    if s.startswith("pct:"):
        try:
            px, py, pw, ph = (float(v) for v in _split_numbers(s[4:], 4, float_ok=True))
        except ValueError as exc:
            raise _BadRequest(f"bad region {s!r}") from exc
        x, y = math.floor(px * W / 100), math.floor(py * H / 100)
        w, h = round(pw * W / 100), round(ph * H / 100)
    else:
        try:
            x, y, w, h = (int(v) for v in _split_numbers(s, 4))
        except ValueError as exc:
            raise _BadRequest(f"bad region {s!r}") from exc
    if w <= 0 or h <= 0 or x >= W or y >= H:
        raise _BadRequest(f"region {s!r} is empty or outside the {W}x{H} image")
    return x, y, min(w, W - x), min(h, H - y)

def parse_size(s: str, rw: int, rh: int, version: int, W: int, H: int) -> tuple[int, int]:
    """An IIIF size parameter for a ``rw`` × ``rh`` region of a ``W`` × ``H`` image."""
    upscale = s.startswith("^")
    if upscale:
        if version < 3:
            raise _BadRequest("'^' sizes are IIIF 3 only")
        s = s[1:]
    try:
        if s == "max" or (s == "full" and version == 2):
            sw, sh = rw, rh
        elif s.startswith("pct:"):
            (n,) = (float(v) for v in _split_numbers(s[4:], 1, float_ok=True))
            if n <= 0:
                raise _BadRequest("pct size must be positive")
            sw, sh = int(rw * n / 100 + 0.5), int(rh * n / 100 + 0.5)
        elif s.startswith("!"):
            w, h = (int(v) for v in _split_numbers(s[1:], 2))
            if w * rh <= h * rw:  # width-limited
                sw, sh = w, _round_ratio(rh * w, rw)
            else:
                sw, sh = _round_ratio(rw * h, rh), h
            sw, sh = min(sw, w), min(sh, h)
            if not upscale and (sw > rw or sh > rh):
                sw, sh = rw, rh
        elif s.endswith(","):
            (w,) = (int(v) for v in _split_numbers(s[:-1], 1))
            sw, sh = w, _round_ratio(rh * w, rw)
        elif s.startswith(","):
            (h,) = (int(v) for v in _split_numbers(s[1:], 1))
            sw, sh = _round_ratio(rw * h, rh), h
        else:
            sw, sh = (int(v) for v in _split_numbers(s, 2))
    except ValueError as exc:
        raise _BadRequest(f"bad size {s!r}") from exc
    if sw < 1 or sh < 1:
        raise _BadRequest(f"size {s!r} is empty")
    if not upscale and (sw > rw or sh > rh):
        raise _BadRequest(f"size {s!r} is larger than the {rw}x{rh} region")
    if sw > 4 * W or sh > 4 * H:
        raise _BadRequest(f"size {s!r} is too large")
    return sw, sh


def _round_ratio(num: int, den: int) -> int:
    """``round(num / den)`` with halves rounded up, in exact integer arithmetic."""
    return (2 * num + den) // (2 * den)


_INT = re.compile(r"\d+")
_FLOAT = re.compile(r"\d+(\.\d*)?|\.\d+")


def _split_numbers(s: str, n: int, *, float_ok: bool = False) -> list[str]:
    parts = s.split(",")
    pattern = _FLOAT if float_ok else _INT
    if len(parts) != n or not all(pattern.fullmatch(p) for p in parts):
        raise ValueError(s)
    return parts
