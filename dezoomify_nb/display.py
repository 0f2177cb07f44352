"""Rich display of images and collections: HTML summaries, and the picker widget inside a kernel.

:func:`image_html` is what ``ZoomableImage._repr_html_`` shows: the title, the source kind and URL, a
thumbnail, and a table of the levels (size, megapixels, tiles). :func:`collection_html` lists the images
of an :class:`~dezoomify_nb.collection.ImageCollection` without fetching any of them.

In a live kernel, :func:`image_bundle` / :func:`collection_bundle` (the ``_repr_mimebundle_`` hooks) add
the interactive picker (:func:`~dezoomify_nb.widgets.picker.widget`) to the HTML, so evaluating ``img``
in a cell shows the widget where widgets render and the HTML elsewhere (nbconvert, GitHub: they skip a
widget view whose state is not saved in the notebook and show the ``text/html`` of the same output).
:func:`picker_html` is that fallback for a picker shown on its own (``dz.widget(url)``). The summaries of
results (saved files, bulk runs) are in :mod:`dezoomify_nb.reprs`.

Layering: this module belongs to the door (``api`` and ``collection`` call it from their ``_repr_*``
methods) and imports nothing above it — never :mod:`dezoomify_nb.widgets`, the notebook face. The one
thing of the face the display needs, the live picker, comes through :func:`register_picker`: the package
root (``dezoomify_nb/__init__.py``, above every layer) registers a factory that imports the widgets only
when a kernel displays an image. That is the simplest way to keep the arrows pointing down while ``img``
in a cell still shows the picker: the HTML stays here, plain functions of the door's objects, and the face
is reached through one hook instead of an import. (``dezoomify_nb.widgets.html`` re-exports this module.)
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from html import escape
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

from .errors import DezoomifyError

# The images and collections displayed here are described by what is read of them (Protocols), not named:
# their ``_repr_*`` methods call this module, so importing their classes, even for the type checker alone,
# would tie the door's modules in a circle. ZoomableImage/CollectionImage and ImageCollection match them.
if TYPE_CHECKING:
    from .thumbnail import Previewable

    class Shown(Previewable, Protocol):
        """An image summarised (and previewed: :class:`~dezoomify_nb.thumbnail.Previewable`)."""

        @property
        def title(self) -> str | None: ...
        @property
        def dezoomer(self) -> str: ...
        @property
        def url(self) -> str: ...


class Listed(Protocol):
    """One image of a collection, as its list shows it (nothing fetched)."""

    @property
    def title(self) -> str: ...
    @property
    def size_hint(self) -> tuple[int, int] | None: ...


class Listing(Protocol):
    """A collection (:class:`~dezoomify_nb.collection.ImageCollection`): its images, where it was found."""

    url: str
    dezoomer: str

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Listed]: ...

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


def _thumbnail_html(img: Shown, fetch: bool) -> str:
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


def levels_table(img: Shown) -> str:
    rows = []
    for k, lv in enumerate(img.levels):
        rows.append(
            f'<tr><td style="{_CELL}">{k}</td><td style="{_CELL}">{lv.width} × {lv.height}</td>'
            f'<td style="{_CELL}">{megapixels(lv.width, lv.height)}</td><td style="{_CELL}">{lv.n_tiles}</td>'
            f'<td style="{_CELL}">{lv.tile_width} × {lv.tile_height}</td></tr>'
        )
    head = "".join(f'<th style="{_CELL}">{h}</th>' for h in ("level", "size (px)", "MP", "tiles", "tile"))
    return f'<table style="border-collapse: collapse;"><tr>{head}</tr>{"".join(rows)}</table>'


def image_html(img: Shown, *, thumbnail: bool = True) -> str:
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


def collection_html(coll: Listing, *, max_rows: int = MAX_ROWS) -> str:
    """An HTML list of the images of ``coll`` (titles and declared sizes; nothing is fetched)."""
    rows = []
    for i, item in enumerate(islice(coll, max_rows)):
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


#: seconds the rich display of a picker waits for its image (and preview) to be read, so that its HTML fallback
#: (what nbconvert and GitHub show, without widget state) describes it; on a slow server it says "opening"
STATIC_WAIT = 1.5
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def picker_html(picker: Any) -> str:
    """What a static renderer shows for a picker: its collection or image summary (as far as read after
    :data:`STATIC_WAIT`), the last download, and a note that the interactive picker needs a kernel."""
    try:
        picker.wait(STATIC_WAIT)
    except TimeoutError:
        pass
    parts = []
    if picker.collection is not None:
        parts.append(collection_html(picker.collection))
    if picker.image is not None:
        parts.append(image_html(picker.image, thumbnail=False))
    elif picker.url_box.value:
        parts.append(f"<div>Opening {_link(picker.url_box.value)}</div>")
    if picker.result is not None:
        from .reprs import save_result_html

        parts.append(save_result_html(picker.result))
    note = ('<div style="color: #777; font-style: italic; margin-top: 6px;">dezoomify_nb picker: interactive '
            "in a running notebook (run the cell to use it).</div>")
    return f'<div class="dezoomify-nb-picker" style="{_STYLE}">{"".join(parts)}{note}</div>'


def picker_bundle(picker: Any, view: dict[str, Any]) -> dict[str, Any]:
    """The picker's ``_repr_mimebundle_``: its widget view (``view``, from ipywidgets) plus
    :func:`picker_html` as the ``text/html`` a renderer without the widget state shows instead."""
    return {**view, "text/html": picker_html(picker)}


#: ``factory(image_or_collection) -> picker widget``, registered by the package root (see the module's doc)
_picker_factory: Callable[[Any], Any] | None = None


def register_picker(factory: Callable[[Any], Any] | None) -> None:
    """Set what makes the picker widget of the rich display in a kernel (None: the HTML alone)."""
    global _picker_factory
    _picker_factory = factory


def _bundle(obj: Any, html: Callable[[], str]) -> dict[str, Any]:
    bundle: dict[str, Any] = {"text/plain": repr(obj)}
    if in_kernel() and _picker_factory is not None:
        picker = _picker_factory(obj)
        view = picker._repr_mimebundle_()
        if view and WIDGET_VIEW in view:
            bundle[WIDGET_VIEW] = view[WIDGET_VIEW]
            bundle["text/html"] = view.get("text/html") or html()
            return bundle
    bundle["text/html"] = html()
    return bundle


def image_bundle(img: Shown) -> dict[str, Any]:
    """The rich display of an image: the picker in a kernel, plus the HTML summary (its preview fetched by
    the picker, waited for a moment: see :func:`picker_html`)."""
    return _bundle(img, lambda: image_html(img))


def collection_bundle(coll: Listing) -> dict[str, Any]:
    """The rich display of a collection: the picker (image dropdown) in a kernel, plus the HTML list."""
    return _bundle(coll, lambda: collection_html(coll))
