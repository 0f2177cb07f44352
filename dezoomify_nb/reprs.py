"""Readable text and HTML summaries of what a download returns: :class:`~dezoomify_nb.api.SaveResult` and
:class:`~dezoomify_nb.bulk.BulkSummary` (``print(result)``, and the rich display of a notebook cell).

The HTML is self-contained (inline styles, JupyterLab's CSS variables with fallbacks), so it reads the same
in JupyterLab, in nbconvert's HTML and on GitHub, where no kernel or widget is there. This module imports
only the standard library (and Pillow, lazily, for a small preview of a saved file): the door
(``api``, ``bulk``) uses it, and it uses nothing of the package.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Protocol

STYLE = ("font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px; line-height: 1.45; "
         "color: var(--jp-ui-font-color1, inherit);")
CELL = "padding: 2px 10px 2px 0; text-align: left; vertical-align: top;"
MUTED = "color: var(--jp-ui-font-color2, #616161);"
#: colours of a status (text, background)
STATUS_COLOURS = {"done": ("#1b5e20", "#e8f5e9"), "skipped": ("#37474f", "#eceff1"), "partial": ("#8a5300", "#fff4e0"), "failed": ("#b00020", "#fdecea")}
#: saved images up to this many pixels get a small preview in their HTML summary
PREVIEW_MAX_PIXELS = 4_000_000
PREVIEW_BOX = 160
PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
#: rows of failures (of tiles, of images) listed before "… and N more"
MAX_LISTED = 5


def duration(seconds: float) -> str:
    """``"0.4 s"``, ``"12 s"``, ``"2 min 05 s"``, ``"1 h 02 min"``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def shown_path(path: Path | str) -> str:
    """``path`` relative to the working directory when inside it (what a notebook's links resolve against)."""
    p = Path(path)
    try:
        rel = os.path.relpath(p)
    except ValueError:  # another drive
        return str(p)
    return str(p) if rel.startswith("..") else rel


def file_link(path: Path | str) -> str:
    """A link to a file under the working directory (JupyterLab opens it, as ``IPython.display.FileLink``
    does), else the path as code."""
    shown = shown_path(path)
    if Path(shown).is_absolute():
        return f"<code>{escape(shown)}</code>"
    href = escape(Path(shown).as_posix(), quote=True)
    return f'<a href="{href}" target="_blank" rel="noopener"><code>{escape(shown)}</code></a>'


def badge(status: str) -> str:
    fg, bg = STATUS_COLOURS.get(status, ("inherit", "transparent"))
    return (f'<span style="color: {fg}; background: {bg}; border-radius: 3px; padding: 0 6px; '
            f'font-weight: 600;">{escape(status)}</span>')


def preview(path: Path, width: int, height: int) -> str:
    """A small ``<img>`` of a saved image file (only small images of common formats), else ``""``."""
    if width * height > PREVIEW_MAX_PIXELS or path.suffix.lower() not in PREVIEW_SUFFIXES or not path.is_file():
        return ""
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.thumbnail((PREVIEW_BOX, PREVIEW_BOX))
            buf = io.BytesIO()
            im.convert("RGBA" if "A" in im.mode else "RGB").save(buf, format="PNG")
    except Exception:  # noqa: BLE001 - a summary must never fail for its preview
        return ""
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<img src="data:image/png;base64,{b64}" alt="preview of {escape(path.name, quote=True)}" '
            f'style="max-width: {PREVIEW_BOX}px; max-height: {PREVIEW_BOX}px; '
            'border: 1px solid var(--jp-border-color2, #ccc);"/>')


# What the summaries read of the results, as Protocols: the results (:mod:`.results`) call these functions
# from their ``__str__`` and ``_repr_html_``, so naming their classes here would tie the two modules in a
# circle (an import under TYPE_CHECKING is still an arrow of the import graph); described by what is read,
# this module stays below them and imports nothing of the package. :class:`~dezoomify_nb.results.SaveResult`,
# :class:`~dezoomify_nb.results.BulkItem` and :class:`~dezoomify_nb.results.BulkSummary` match them.
class SavedFile(Protocol):
    """One saved image (a :class:`~dezoomify_nb.results.SaveResult`)."""

    @property
    def path(self) -> Path: ...
    @property
    def level(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def tiles(self) -> int: ...
    @property
    def failed(self) -> Sequence[tuple[str, str]]: ...
    @property
    def seconds(self) -> float | None: ...


class BulkRow(Protocol):
    """One image of a bulk run (a :class:`~dezoomify_nb.results.BulkItem`)."""

    @property
    def index(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def path(self) -> Path | None: ...
    @property
    def message(self) -> str: ...


class BulkRun(Protocol):
    """A bulk run (a :class:`~dezoomify_nb.results.BulkSummary`)."""

    @property
    def items(self) -> Sequence[BulkRow]: ...
    @property
    def seconds(self) -> float | None: ...
    @property
    def done(self) -> int: ...
    @property
    def partial(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def skipped(self) -> int: ...


# --- SaveResult -----------------------------------------------------------------------------------
def save_result_text(r: SavedFile) -> str:
    """``Saved out/page.png: 1000 × 750 px, level 1, 12 tiles in 0.4 s`` (and the failed tiles, if any)."""
    took = f" in {duration(r.seconds)}" if r.seconds is not None else ""
    lines = [f"Saved {shown_path(r.path)}: {r.width} × {r.height} px, level {r.level}, {r.tiles} tiles{took}"]
    if r.failed:
        lines.append(f"{len(r.failed)} of {r.tiles} tiles failed and were left empty:")
        lines += [f"  {url}: {reason}" for url, reason in r.failed[:MAX_LISTED]]
        if len(r.failed) > MAX_LISTED:
            lines.append(f"  … and {len(r.failed) - MAX_LISTED} more")
    return "\n".join(lines)


def save_result_html(r: SavedFile) -> str:
    took = f" · {duration(r.seconds)}" if r.seconds is not None else ""
    status = badge("partial" if r.failed else "done")
    details = ""
    if r.failed:
        rows = "".join(f'<li><code>{escape(url)}</code>: {escape(reason)}</li>' for url, reason in r.failed[:MAX_LISTED])
        more = f"<li>… and {len(r.failed) - MAX_LISTED} more</li>" if len(r.failed) > MAX_LISTED else ""
        details = (f'<details><summary>{len(r.failed)} of {r.tiles} tiles failed (left empty)</summary>'
                   f'<ul style="margin: 2px 0;">{rows}{more}</ul></details>')
    return (
        f'<div class="dezoomify-nb-saved" style="{STYLE} display: flex; gap: 14px; align-items: flex-start;">'
        f"{preview(Path(r.path), r.width, r.height)}"
        f"<div><div>{status} Saved {file_link(r.path)}</div>"
        f'<div style="{MUTED}">{r.width} × {r.height} px · level {r.level} · {r.tiles} tiles{took}</div>'
        f"{details}</div></div>"
    )


# --- BulkSummary ----------------------------------------------------------------------------------
def _counts(s: BulkRun) -> str:
    n = len(s.items)
    skipped = f", {s.skipped} skipped" if s.skipped else ""
    return f"{n} image{'s' if n != 1 else ''}: {s.done} done, {s.partial} partial, {s.failed} failed{skipped}"


def bulk_repr(s: BulkRun) -> str:
    return f"<BulkSummary {_counts(s)}>"


def bulk_text(s: BulkRun) -> str:
    """One line for the run, then one per image: ``[1] done     Page 1 → pages/Page_1.jpg``."""
    took = f" in {duration(s.seconds)}" if s.seconds is not None else ""
    lines = [f"Bulk download: {_counts(s)}{took}"]
    for it in s.items:
        where = f" → {shown_path(it.path)}" if it.path is not None else ""
        why = f" ({it.message})" if it.message else ""
        lines.append(f"  [{it.index + 1}] {it.status:<7} {it.title}{where}{why}")
    return "\n".join(lines)


def bulk_html(s: BulkRun) -> str:
    took = f" · {duration(s.seconds)}" if s.seconds is not None else ""
    rows = []
    for it in s.items:
        out = file_link(it.path) if it.path is not None else ""
        why = f'<div style="{MUTED}">{escape(it.message)}</div>' if it.message else ""
        rows.append(f'<tr><td style="{CELL} text-align: right; {MUTED}">{it.index + 1}</td>'
                    f'<td style="{CELL}">{badge(it.status)}</td><td style="{CELL}">{escape(it.title)}</td>'
                    f'<td style="{CELL}">{out}{why}</td></tr>')
    head = "".join(f'<th style="{CELL} {MUTED} font-weight: normal;">{h}</th>' for h in ("#", "status", "title", "file"))
    return (
        f'<div class="dezoomify-nb-bulk" style="{STYLE}">'
        f'<div style="font-weight: 600;">Bulk download: {escape(_counts(s))}{took}</div>'
        f'<table style="border-collapse: collapse; margin-top: 4px;"><tr>{head}</tr>{"".join(rows)}</table></div>'
    )
