"""The memory budget: how many bytes of pixel buffers one download may hold at once.

``$DEZOOMIFY_NB_MEMORY_BUDGET`` sets it (``"2GiB"``, ``"512MiB"``, ``"8G"``, ``"1500000000"``; ``none``
turns every check off); the default is a quarter of the physical RAM, at most :data:`DEFAULT_MAX`. A server
decides how wide an image is and how tall its tile rows are, so every buffer sized from those numbers
(strips, canvases, tiles) is checked against the budget **before** anything is fetched: a level that cannot
be streamed within it is refused with :class:`~dezoomify_nb.errors.MemoryBudgetError`, never a
``MemoryError`` halfway through.
"""

from __future__ import annotations

import math
import os

from .errors import MemoryBudgetError, WriterError

MEMORY_BUDGET_ENV = "DEZOOMIFY_NB_MEMORY_BUDGET"
#: the default budget is a quarter of the RAM, but never more than this
DEFAULT_MAX = 4 << 30
#: the smallest budget accepted (below it nothing useful fits)
MIN_BUDGET = 16 << 20
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_OFF = ("none", "off", "unlimited", "0")


def fmt_bytes(n: float) -> str:
    """``67108864`` → ``"64 MiB"``, ``1.5 * 2**30`` → ``"1.5 GiB"`` (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def parse_bytes(text: str) -> int:
    """``"2GiB"``, ``"512 MiB"``, ``"8G"``, ``"1.5M"``, ``"123456"`` → bytes (ValueError otherwise)."""
    t = text.strip().upper().replace(" ", "").removesuffix("IB").removesuffix("B")
    unit = t[-1] if t and t[-1] in _UNITS else ""
    number = float(t[: len(t) - len(unit)])
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"not a positive size: {text!r}")
    return int(number * _UNITS[unit])


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def memory_budget() -> int | None:
    """The budget in bytes, or None when ``$DEZOOMIFY_NB_MEMORY_BUDGET`` turns it off (``none``)."""
    env = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if env:
        if env.lower() in _OFF:
            return None
        try:
            value = parse_bytes(env)
        except ValueError:
            raise WriterError(f"{MEMORY_BUDGET_ENV}={env!r} is not a number of bytes",
                              hint=f"Set {MEMORY_BUDGET_ENV} to e.g. 2GiB or 512MiB, or unset it.") from None
        return value
    ram = physical_memory()
    return DEFAULT_MAX if ram is None else max(MIN_BUDGET, min(ram // 4, DEFAULT_MAX))


def budget_hint(need: int | None = None) -> str:
    """How to raise the budget (to ``need`` bytes when given)."""
    value = "<size>" if need is None else _round_up(need)
    return (f"raise the memory budget with {MEMORY_BUDGET_ENV}={value} (default: a quarter of the RAM, "
            f"at most {fmt_bytes(DEFAULT_MAX)})")


def _round_up(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= size or unit == "MiB":
            return f"{-(-n // size)}{unit}"
    raise AssertionError("unreachable")


def check_budget(need: int, what: str, *, hint: str) -> None:
    """Raise :class:`MemoryBudgetError` when ``need`` bytes (for ``what``) exceed the budget.

    ``hint`` is what the user can do instead; how to raise the budget is appended.
    """
    budget = memory_budget()
    if budget is None or need <= budget:
        return
    raise MemoryBudgetError(
        f"{what} needs about {fmt_bytes(need)} of memory, over the memory budget of {fmt_bytes(budget)}",
        hint=f"{hint}, or {budget_hint(need)}.", need=need, budget=budget)
