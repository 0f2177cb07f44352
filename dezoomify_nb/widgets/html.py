"""Rich display of images and collections: HTML summaries, and the picker widget inside a kernel.

:func:`image_html` is what ``ZoomableImage._repr_html_`` shows: the title, the source kind and URL, a
thumbnail, and a table of the levels (size, megapixels, tiles). :func:`collection_html` lists the images
of an :class:`~dezoomify_nb.collection.ImageCollection` without fetching any of them.

In a live kernel, :func:`image_bundle` / :func:`collection_bundle` (the ``_repr_mimebundle_`` hooks) add
the interactive picker (:func:`~dezoomify_nb.widgets.picker.widget`) to the HTML, so evaluating ``img``
in a cell shows the widget where widgets render and the HTML elsewhere (nbconvert, GitHub).
"""

from __future__ import annotations

import base64
from html import escape
from typing import TYPE_CHECKING, Any

from ..errors import DezoomifyError

if TYPE_CHECKING:
    from ..api import ZoomableImage
    from ..collection import ImageCollection

#: rows shown in a collection's table
MAX_ROWS = 50
_STYLE = "font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; line-height: 1.4;"
_CELL = "padding: 1px 8px; text-align: right; border-bottom: 1px solid #ddd;"


def _link(url: str) -> str:
    text = escape(url if len(url) <= 90 else url[:60] + "…" + url[-25:])
    if url.startswith(("http://", "https://")):
        return f'<a href="{escape(url, quote=True)}" target="_blank" rel="noopener">{text}</a>'
    return f"<code>{text}</code>"


def megapixels(width: int, height: int) -> str:
    mp = width * height / 1e6
    return f"{mp:.2f}" if mp < 10 else f"{mp:.0f}"


def _thumbnail_html(img: ZoomableImage, fetch: bool) -> str:
    from .thumbnail import cached_png, thumbnail_png

    try:
        png = thumbnail_png(img) if fetch else cached_png(img)
    except (DezoomifyError, OSError) as exc:
        return f'<div style="color: #a00; max-width: 256px;">No preview: {escape(str(exc).splitlines()[0])}</div>'
    if png is None:
        return ""
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<img src="data:image/png;base64,{b64}" alt="preview" '
            'style="max-width: 256px; max-height: 256px; border: 1px solid #ccc;"/>')


def levels_table(img: ZoomableImage) -> str:
    rows = []
    for k, lv in enumerate(img.levels):
        rows.append(
            f'<tr><td style="{_CELL}">{k}</td><td style="{_CELL}">{lv.width} × {lv.height}</td>'
            f'<td style="{_CELL}">{megapixels(lv.width, lv.height)}</td><td style="{_CELL}">{lv.n_tiles}</td>'
            f'<td style="{_CELL}">{lv.tile_width} × {lv.tile_height}</td></tr>'
        )
    head = "".join(f'<th style="{_CELL}">{h}</th>' for h in ("level", "size (px)", "MP", "tiles", "tile"))
    return f'<table style="border-collapse: collapse;"><tr>{head}</tr>{"".join(rows)}</table>'


def image_html(img: ZoomableImage, *, thumbnail: bool = True) -> str:
    """An HTML summary of ``img``; ``thumbnail=True`` fetches the preview's few tiles if not done yet."""
    try:
        table = levels_table(img)
    except DezoomifyError as exc:  # an unresolved collection image whose metadata cannot be fetched
        table = f'<div style="color: #a00;">{escape(str(exc))}</div>'
    title = escape(img.title or "Untitled image")
    return (
        f'<div class="dezoomify-nb-image" style="{_STYLE} display: flex; gap: 16px; align-items: flex-start;">'
        f"{_thumbnail_html(img, thumbnail)}"
        f'<div><div style="font-size: 15px; font-weight: bold;">{title}</div>'
        f'<div style="color: #555;">{escape(img.dezoomer)} · {_link(img.url)}</div>'
        f"{table}</div></div>"
    )


def collection_html(coll: ImageCollection, *, max_rows: int = MAX_ROWS) -> str:
    """An HTML list of the images of ``coll`` (titles and declared sizes; nothing is fetched)."""
    rows = []
    for i, item in enumerate(coll[:max_rows]):
        size = item.size_hint
        dims = f"{size[0]} × {size[1]}" if size else "? × ?"
        rows.append(f'<tr><td style="{_CELL}">{i}</td><td style="{_CELL} text-align: left;">'
                    f'{escape(item.title)}</td><td style="{_CELL}">{dims}</td></tr>')
    more = f"<div>… and {len(coll) - max_rows} more</div>" if len(coll) > max_rows else ""
    via = f"{escape(coll.dezoomer)} · " if coll.dezoomer else ""
    return (
        f'<div class="dezoomify-nb-collection" style="{_STYLE}">'
        f'<div style="font-size: 15px; font-weight: bold;">{len(coll)} images</div>'
        f'<div style="color: #555;">{via}{_link(coll.url)}</div>'
        f'<table style="border-collapse: collapse;"><tr><th style="{_CELL}">#</th>'
        f'<th style="{_CELL} text-align: left;">title</th><th style="{_CELL}">size (px)</th></tr>'
        f'{"".join(rows)}</table>{more}</div>'
    )


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where widgets can be shown)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _bundle(obj: Any, html: str, make_widget: Any) -> dict[str, Any]:
    bundle: dict[str, Any] = {"text/plain": repr(obj), "text/html": html}
    if in_kernel():
        view = make_widget()._repr_mimebundle_()
        if view:
            bundle.update({k: v for k, v in view.items() if k != "text/plain"})
    return bundle


def image_bundle(img: ZoomableImage) -> dict[str, Any]:
    """The rich display of an image: the picker in a kernel, plus the HTML summary (its preview only if
    already fetched: the picker fetches it in the background)."""
    from .picker import widget

    live = in_kernel()
    return _bundle(img, image_html(img, thumbnail=not live), lambda: widget(image=img))


def collection_bundle(coll: ImageCollection) -> dict[str, Any]:
    """The rich display of a collection: the picker (image dropdown) in a kernel, plus the HTML list."""
    from .picker import widget

    return _bundle(coll, collection_html(coll), lambda: widget(image=coll))
