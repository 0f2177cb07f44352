"""Sources with several images (IIIF manifests, bulk lists): :class:`ImageCollection`.

A multi-image dezoomer returns :class:`~dezoomify_nb.model.ImageRef` entries (a canvas's ``info.json``,
a line of a bulk list) next to, or instead of, ready :class:`~dezoomify_nb.model.Image` objects. Each
becomes a :class:`CollectionImage`: a :class:`~dezoomify_nb.api.ZoomableImage` whose title is known at
once but whose levels are fetched (through the normal driver, :func:`~dezoomify_nb.resolve.resolve`) only
when first needed — ``.levels``, ``.width``, ``.to_dask()``, ``.save()`` — and then kept. Opening a
manifest of 500 canvases therefore fetches the manifest alone.

>>> import dezoomify_nb as dz
>>> book = dz.open("https://example.org/iiif/book1/manifest.json")   # doctest: +SKIP
>>> len(book), book[0].title, book[0].levels[0].size                  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, overload

from .errors import MetadataError
from .lazy.decode import channels_of
from .model import (
    DEFAULT_MAX_PIXELS,
    Image,
    ImageRef,
    check_image_size,
    image_name,
    ref_georef,
    with_page_referer,
)
from .net import NetConfig
from .registry import list_dezoomers
from .resolve import resolve_scoped
from .zoomable import ZoomableImage

if TYPE_CHECKING:
    from .cache import TileCache

#: a ref may resolve to more refs (a bulk list line that is a manifest): at most this many hops
MAX_HOPS = 4


def is_multi(entries: Sequence[Image | ImageRef]) -> bool:
    """Should these entries be shown as a collection? Several, a ref, or found by a multi-image dezoomer."""
    if len(entries) != 1:
        return True
    entry = entries[0]
    if isinstance(entry, ImageRef):
        return True
    dz = list_dezoomers().get(entry.dezoomer)
    return bool(getattr(dz, "multi_image", False))


def resolve_ref(
    ref: ImageRef,
    net: NetConfig,
    *,
    cache: TileCache | None = None,
    image_index: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image:
    """The image ``ref`` points to: its dezoomer is run on its URL (only metadata is fetched).

    When the URL holds several images (a bulk list line that is a manifest), the one at ``image_index``
    (out of range: the last) is taken, as dezoomify-rs does.
    """
    return resolve_ref_scoped(ref, net, cache=cache, image_index=image_index, max_pixels=max_pixels)[0]


def resolve_ref_scoped(
    ref: ImageRef,
    net: NetConfig,
    *,
    cache: TileCache | None = None,
    image_index: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    options: Mapping[str, object] | None = None,
) -> tuple[Image, NetConfig]:
    """:func:`resolve_ref`, and the config to fetch its tiles with: ``net`` as each hop narrowed it (a ref
    never gets more trust than the document that named it, see :mod:`dezoomify_nb.resolve`). ``options``:
    the dezoomers' options (e.g. ``tile_format``)."""
    extra: dict[str, Any] = {"options": {**(options or {}), "max_pixels": max_pixels}}
    if cache is not None:
        extra["cache"] = cache
    current: Image | ImageRef = ref
    for hop in range(MAX_HOPS):
        assert isinstance(current, ImageRef)
        found, net = resolve_scoped(current.url, dezoomer=current.dezoomer, net=net, **extra)
        current = found[min(max(image_index if hop == 0 else 0, 0), len(found) - 1)]
        if isinstance(current, Image):
            check_image_size(current, max_pixels)
            if ref.region is not None or ref.rotation:  # a manifest painting a part of the image
                current = replace(current, region=ref.region, rotation=ref.rotation)
            if ref.georef is not None and current.georef is None:  # a IIIF Georeference Annotation's GCPs
                current = replace(current, georef=ref_georef(ref, current))
            return with_page_referer(current, ref.page), net
    raise MetadataError(f"{ref.url} points to lists of images nested more than {MAX_HOPS} deep")


class CollectionImage(ZoomableImage):
    """One image of an :class:`ImageCollection`; resolved (metadata fetched) on first use, then cached.

    ``title``, ``url``, ``index`` and ``size_hint`` never fetch anything; ``resolved`` tells whether the
    metadata has been fetched. Everything else behaves as :class:`~dezoomify_nb.api.ZoomableImage`.
    """

    def __init__(
        self,
        entry: Image | ImageRef,
        net: NetConfig | None = None,
        *,
        mode: str = "RGB",
        cache: TileCache | None = None,
        index: int = 0,
        image_index: int = 0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        options: Mapping[str, object] | None = None,
    ) -> None:
        channels_of(mode)
        self.entry = entry
        self.index = index
        self.net = net or NetConfig()
        self.mode = mode
        self.cache = cache
        #: when this entry's URL holds several images (a bulk line that is a manifest): which one to take
        self.image_index = image_index
        self.max_pixels = max_pixels
        #: the dezoomers' options when the entry is resolved (``tile_format``…)
        self.options = dict(options or {})
        self._image: Image | None = None
        self._lock = threading.Lock()
        if isinstance(entry, Image):
            self._adopt(entry)

    def _adopt(self, image: Image) -> None:
        image = replace(image, title=self._title(image))
        box = {"bbox": self.options.get("bbox"), "bbox_crs": self.options.get("bbox_crs")}  # a map's --bbox
        if self.cache is not None:
            ZoomableImage.__init__(self, image, self.net, mode=self.mode, cache=self.cache, **box)
        else:
            ZoomableImage.__init__(self, image, self.net, mode=self.mode, **box)

    def _title(self, image: Image | None) -> str:
        entry_title = self.entry.title if isinstance(self.entry, ImageRef) else None
        return (entry_title or (image.title if image is not None else None) or image_name(self.entry.url)
                or f"Image {self.index + 1}")

    # --- lazy resolution --------------------------------------------------------------------------
    @property
    def image(self) -> Image:  # type: ignore[override]
        if self._image is None:
            with self._lock:
                if self._image is None:
                    assert isinstance(self.entry, ImageRef)
                    image, self.net = resolve_ref_scoped(self.entry, self.net, cache=self.cache,
                                                         image_index=self.image_index, max_pixels=self.max_pixels,
                                                         options=self.options)
                    self._adopt(image)
        assert self._image is not None
        return self._image

    @image.setter
    def image(self, value: Image) -> None:
        self._image = value

    def resolve(self) -> CollectionImage:
        """Fetch the metadata now (it is fetched on first use anyway); returns ``self``."""
        self.image  # noqa: B018 - resolves
        return self

    @property
    def resolved(self) -> bool:
        return self._image is not None

    # --- known without resolving ------------------------------------------------------------------
    @property
    def title(self) -> str:
        return self._title(self._image)

    @property
    def file_title(self) -> str:
        """Collection images are saved under compact names: ``Gospel-book_Lindisfarne_Gospels_f_1r``."""
        from .writers.naming import compact_title

        return compact_title(self.title) or f"Image_{self.index + 1}"

    @property
    def url(self) -> str:
        return self._image.url if self._image is not None else self.entry.url

    @property
    def dezoomer(self) -> str:
        return self._image.dezoomer if self._image is not None else self.entry.dezoomer

    @property
    def size_hint(self) -> tuple[int, int] | None:
        """``(width, height)`` of what is saved by default (the image, or the region its source paints): exact
        once resolved, else the source's hint (a canvas size) or None."""
        if self._image is not None:
            region = self._image.region
            return (region[2], region[3]) if region else self._image.levels[0].size
        return self.entry.size_hint if isinstance(self.entry, ImageRef) else None

    def __repr__(self) -> str:
        if self._image is not None:
            return super().__repr__()
        return f"<ZoomableImage {self.title!r} at {self.entry.url} (not resolved yet)>"


class ImageCollection(Sequence[CollectionImage]):
    """The images of a multi-image source, in order: ``len()``, iteration, ``[i]`` (negative too),
    slices (a list). Items are :class:`CollectionImage`, resolved one by one when used."""

    def __init__(self, items: Sequence[CollectionImage], *, url: str = "", dezoomer: str = "") -> None:
        self._items = list(items)
        self.url = url
        self.dezoomer = dezoomer or next((it.entry.found_by for it in self._items
                                          if isinstance(it.entry, ImageRef) and it.entry.found_by), "")

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, i: int) -> CollectionImage: ...

    @overload
    def __getitem__(self, i: slice) -> list[CollectionImage]: ...

    def __getitem__(self, i: int | slice) -> CollectionImage | list[CollectionImage]:
        return self._items[i]

    def __iter__(self) -> Iterator[CollectionImage]:
        return iter(self._items)

    @property
    def titles(self) -> list[str]:
        return [it.title for it in self._items]

    def pick(self, index: int) -> CollectionImage:
        """Image ``index`` (0-based); past the end, the last one (dezoomify-rs's ``--image-index`` rule)."""
        if not self._items:
            raise IndexError("empty collection")
        return self._items[min(max(index, 0), len(self._items) - 1)]

    def describe(self) -> list[str]:
        """One line per image, ``[i] title (W x H pixels)``; ``?`` where the size is not known yet."""
        lines = []
        for i, it in enumerate(self._items):
            size = it.size_hint
            dims = f"{size[0]} x {size[1]}" if size else "? x ?"
            lines.append(f"[{i}] {it.title} ({dims} pixels)")
        return lines

    def __repr__(self) -> str:
        via = f" via {self.dezoomer}" if self.dezoomer else ""
        return f"<ImageCollection {self.url!r}: {len(self)} images{via}>"

    def _repr_html_(self) -> str:
        """The images' titles and declared sizes (nothing fetched; built in :mod:`dezoomify_nb.display`)."""
        from .display import collection_html

        return collection_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """In a kernel: the picker widget (image dropdown), with the HTML list for static renderers."""
        from .display import collection_bundle

        return collection_bundle(self)

    def save_all(self, directory: str = ".", **save_options: Any) -> Any:
        """Download every image in turn (see :func:`dezoomify_nb.bulk.save_all`); returns the summary."""
        from .bulk import save_all

        return save_all(self, directory=directory, **save_options)
