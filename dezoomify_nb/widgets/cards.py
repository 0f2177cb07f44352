"""The HTML the picker shows for each of its states (styled by ``static/picker.css``).

``empty`` (a hint where the image will be), ``opening`` (what is being read), ``ready`` (one quiet line),
``downloading`` (where to), ``cancelled`` (nothing written), ``done`` (a link to the file, a button
saving it to this computer, the time taken, a preview when the image is small enough) and ``failed``
(one sentence, advice, details).
"""

from __future__ import annotations

import base64
import os
from html import escape
from pathlib import Path

from .advice import ErrorParts

STATES = ("empty", "opening", "ready", "downloading", "cancelled", "done", "failed")


def placeholder_empty() -> str:
    return ('<div class="dz-card dz-card-empty"><div class="dz-card-title">No image yet</div>'
            "<div>Paste the URL of a zoomable image above and press <kbd>Enter</kbd>: a IIIF <code>info.json</code>"
            " or manifest, a Deep Zoom <code>.dzi</code>, a Zoomify <code>ImageProperties.xml</code>, or the page "
            "of a museum's viewer.</div></div>")


def opening(what: str) -> str:
    return (f'<div class="dz-card dz-card-opening"><span class="dz-spinner"></span>'
            f"<span>{escape(what)}</span></div>")


def quiet(text: str) -> str:
    return f'<div class="dz-line">{escape(text)}</div>'


def error(parts: ErrorParts) -> str:
    advice = f'<div class="dz-advice">{escape(parts.advice)}</div>' if parts.advice else ""
    details = "\n".join(parts.details)
    return (f'<div class="dz-card dz-card-failed" role="alert"><div class="dz-card-title">'
            f'<span class="dz-icon">!</span>{escape(parts.sentence)}</div>{advice}'
            f'<details class="dz-details"><summary>Details</summary><pre>{escape(details)}</pre></details></div>')


def cancelled() -> str:
    return ('<div class="dz-card dz-card-cancelled"><div class="dz-card-title">Download cancelled</div>'
            "<div>Nothing was written. Press Download to start again.</div></div>")


def link_href(path: Path, cwd: Path | None = None) -> str:
    """The file's address relative to the kernel's folder (the notebook's): as ``FileLink`` does, a click
    in JupyterLab opens it there (``/lab/tree/…``)."""
    cwd = cwd or Path.cwd()
    try:
        rel = os.path.relpath(path, cwd)
    except ValueError:  # another drive
        rel = str(path)
    return "/".join(escape(part, quote=True) for part in Path(rel).parts)


#: an arrow into a tray (currentColor: follows the theme)
_SAVE_ICON = ('<svg class="dz-save-icon" viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">'
              '<path d="M8 1.5v8.5M4.5 6.5 8 10l3.5-3.5M2.5 11.5v3h11v-3" fill="none" stroke="currentColor" '
              'stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"/></svg>')


def save_button(name: str, size: str) -> str:
    """The done card's "Save to this computer" button (the page asks the kernel for the file: see
    :mod:`~dezoomify_nb.widgets.status`), after the place where it says how the transfer goes. In a narrow
    card (JupyterLab with its side bar open) only its icon shows, so the card keeps to two lines."""
    label = escape(f"Save {name} ({size}) to this computer", quote=True)
    return ('<span class="dz-save"><span class="dz-save-state" aria-live="polite"></span>'
            f'<button type="button" class="dz-save-copy" data-dz-save aria-label="{label}" title="{label}: the '
            f'kernel sends it to this browser, which saves it with your downloads">{_SAVE_ICON}'
            '<span class="dz-save-label">Save to this computer</span></button></span>')


def save_note(kind: str, size: str, cap: str) -> str:
    """Why the file is not offered to this computer (``kind``: ``"too-big"``, ``"folder"``, ``"missing"``)."""
    why = {"too-big": f"At {escape(size)} it is too large to send through this page (the limit is {escape(cap)}): "
                      "copy it from the server, at the path below.",
           "folder": "A folder of files: it stays on the server, at the path below.",
           "missing": "It is no longer on the server."}[kind]
    return f'<div class="dz-save-note">{why}</div>'


def done(*, path: Path, href: str, size: tuple[int, int], level: int, seconds: str, file_bytes: str,
         tiles: int, failed: int, preview_png: bytes | None, save: str = "", note: str = "") -> str:
    img = ""
    if preview_png is not None:
        b64 = base64.b64encode(preview_png).decode("ascii")
        img = f'<img class="dz-done-preview" src="data:image/png;base64,{b64}" alt="preview of the file"/>'
    warn = (f'<div class="dz-advice">{failed} of {tiles} tiles failed and were left black: download again to '
            "fill them.</div>") if failed else ""
    title = "Saved with missing tiles" if failed else "Saved"
    # each fact kept on one line ("in 1.0 s", not "in 1.0" then "s"): a narrow card wraps between them
    facts = "".join(f' <span class="dz-fact">· {escape(fact)}</span>' for fact in (
        f"{size[0]} × {size[1]} px", f"level {level}", file_bytes, f"{tiles} tile{'s' if tiles != 1 else ''} in {seconds}"))
    return (f'<div class="dz-card dz-card-done{" dz-card-partial" if failed else ""}">{img}<div class="dz-done-text">'
            f'<div class="dz-done-head"><span class="dz-done-facts"><span class="dz-card-title"><span class="dz-icon">'
            f'{"!" if failed else "✓"}</span>{title} '
            f'<a class="dz-file-link" href="{href}" target="_blank" title="{escape(str(path), quote=True)}">'
            f"{escape(path.name)}</a></span>{facts}</span>{save}</div>{warn}{note}"
            f'<div class="dz-muted">{escape(str(path))} · lazy array: <code>picker.image.to_dask({level})</code>'
            "</div></div></div>")
