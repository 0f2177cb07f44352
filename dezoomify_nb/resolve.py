"""The driver: run dezoomers, fetching whatever bytes they ask for, until one yields images.

Trust only narrows here (:func:`scoped`): whatever is found from a document fetched over http(s) — the
pages a dezoomer asks for next, the images and the collection items it returns — is fetched with
``local_root=None`` (no local file may be read, :mod:`dezoomify_nb.net.local`), and the user's headers stay
on the site of the first http(s) URL resolved (``header_host``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from dataclasses import replace

from .budget import fmt_bytes
from .cache import TileCache
from .dezoomers.base import Context, Dezoomer
from .errors import DezoomifyError, FetchError, MetadataError, NeedsData, NoDezoomerFound, WrongDezoomer
from .model import Image, ImageRef
from .net import NetConfig, fetch
from .net.fetch import _host
from .net.local import is_http, refusal
from .net.loop import run
from .registry import list_dezoomers

log = logging.getLogger("dezoomify_nb.resolve")

#: at most this many fetch rounds per dezoomer, and pages in all (a hostile input cannot loop us)
MAX_ROUNDS = 64
MAX_PAGES = 512
#: bytes of fetched documents one resolution keeps at once (a collection's child manifests add up): past it,
#: MetadataError. Each document is also capped on its own by the network layer.
MAX_PAGES_BYTES = 64 << 20


def held_bytes(pages: Mapping[str, bytes | FetchError]) -> int:
    """Bytes of the documents in ``pages`` (failed fetches count for nothing)."""
    return sum(len(v) for v in pages.values() if isinstance(v, bytes | bytearray))


def _over_budget(url: str, limit: int) -> MetadataError:
    exc = MetadataError(
        f"the documents needed to open {url} add up to more than {fmt_bytes(limit)}, the most kept in memory "
        f"at once for one source",
        hint="If it is a collection, open one of its child manifests (or sub-collections) by its own URL; "
             "--logging debug lists the documents fetched.",
    )
    exc.final = True  # type: ignore[attr-defined] # the other dezoomers would fetch the same: stop there
    return exc


def _small(exc: FetchError) -> FetchError:
    """``exc`` without its traceback and chained exceptions: the frames they pin may hold whole bodies."""
    exc.__traceback__ = None
    exc.__context__ = exc.__cause__ = None
    return exc


async def _fetch_pages(
    urls: list[str], net: NetConfig, cache: TileCache | None, *, room: int = MAX_PAGES_BYTES, source: str = ""
) -> dict[str, bytes | FetchError]:
    """Fetch metadata documents concurrently; with a cache, store them (and read them when offline).

    ``room``: the bytes these documents may add up to; past it the fetches still running are cancelled
    and a :class:`MetadataError` (``final``) is raised.
    """
    got = 0

    def count(data: bytes) -> bytes:
        nonlocal got
        got += len(data)
        if got > room:
            raise _over_budget(source or urls[0], MAX_PAGES_BYTES)
        return data

    async def one(url: str) -> bytes | FetchError:
        if cache is not None and net.offline:
            cached = await cache.get_page(url)
            if cached is not None:
                return count(cached)
        try:
            data = count(await fetch(url, net, metadata=True))
        except FetchError as exc:
            return _small(exc)
        if cache is not None and url.startswith(("http://", "https://")):
            await cache.set_page(url, data)
        return data

    tasks = [asyncio.ensure_future(one(u)) for u in urls]
    try:
        results = await asyncio.gather(*tasks)
    finally:  # on the first error (over the cap), the others stop: their bodies are not kept
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return dict(zip(urls, results, strict=True))


def scoped(net: NetConfig, url: str) -> NetConfig:
    """The config to resolve ``url`` with: an http(s) URL never reads local files, and fixes the site of
    the user's headers if nothing did before (the user's input, or a URL named by the user's own file)."""
    if not is_http(url):
        return net
    if net.local_root is None and net.header_host is not None:
        return net
    return replace(net, local_root=None, header_host=net.header_host if net.header_host is not None else _host(url))


class _Reads(Mapping[str, "bytes | FetchError"]):
    """The pages as one dezoomer sees them, noting the first http(s) document whose bytes it read."""

    def __init__(self, pages: dict[str, bytes | FetchError]) -> None:
        self.pages = pages
        self.remote: str | None = None

    def __getitem__(self, url: str) -> bytes | FetchError:
        got = self.pages[url]
        if self.remote is None and isinstance(got, bytes) and is_http(url):
            self.remote = url
        return got

    def __contains__(self, url: object) -> bool:
        return url in self.pages

    def __iter__(self) -> Iterator[str]:
        return iter(self.pages)

    def __len__(self) -> int:
        return len(self.pages)


def _narrowed(net: NetConfig, reads: _Reads) -> NetConfig:
    """``net`` once the dezoomer has read a document fetched over http(s): no local file any more."""
    return net if reads.remote is None else scoped(net, reads.remote)


def _tiles_refused(image: Image, net: NetConfig) -> FetchError | None:
    """Why ``image``'s tiles may not be fetched (local files out of bounds, another scheme), or None."""
    for lv in image.levels:
        try:
            url = lv.tile_url(0, 0)
        except Exception:  # noqa: BLE001 - a level that cannot name its first tile fails later, clearly
            continue
        if not is_http(url):
            refused = refusal(url.split("#bytes=", 1)[0], net)
            if refused is not None:
                return refused
    return None


def _check_tiles(images: list[Image | ImageRef], net: NetConfig, name: str) -> list[Image | ImageRef]:
    """Refuse at once an image whose tiles are local files it may not read (fetch would refuse each tile).

    Alone, it is an error; among others (a manifest), it becomes a reference to its first tile, which fails
    with the refusal when that image is used: the other images stay usable.
    """
    out: list[Image | ImageRef] = []
    for im in images:
        refused = _tiles_refused(im, net) if isinstance(im, Image) else None
        if refused is None:
            out.append(im)
        elif len(images) == 1:
            err = MetadataError(f"{refused} (a tile of the image)", hint=refused.hint)
            err.explains_input = True  # type: ignore[attr-defined]
            raise err
        else:
            log.warning("%s: %s", im.title or name, refused)
            out.append(ImageRef(refused.url, im.title, found_by=name))
    return out


def _run_one(
    dezoomer: Dezoomer,
    ctx: Context,
    pages: dict[str, bytes | FetchError],
    net: NetConfig,
    cache: TileCache | None = None,
) -> tuple[list[Image | ImageRef], NetConfig]:
    """The dezoomer's images, and the config to fetch them with (narrowed if it read remote documents)."""
    reads = _Reads(pages)
    ctx = Context(ctx.url, reads, ctx.options)
    for _ in range(MAX_ROUNDS):
        try:
            images = dezoomer.images(ctx)
            found_net = _narrowed(net, reads)
            return _check_tiles(images, found_net, dezoomer.name), found_net
        except NeedsData as need:
            missing = [u for u in need.urls if u not in pages]
            if not missing:
                raise MetadataError(f"{dezoomer.name} asked again for {need.urls[0]}") from None
            if len(pages) + len(missing) > MAX_PAGES:
                raise MetadataError(f"{dezoomer.name} asked for more than {MAX_PAGES} documents") from None
            log.debug("%s needs %s", dezoomer.name, ", ".join(missing))
            room = MAX_PAGES_BYTES - held_bytes(pages)
            pages.update(run(_fetch_pages(missing, _narrowed(net, reads), cache, room=room, source=ctx.url)))
    raise MetadataError(f"{dezoomer.name} did not finish after {MAX_ROUNDS} rounds")


def resolve(
    url: str,
    *,
    dezoomer: str = "auto",
    net: NetConfig | None = None,
    options: Mapping[str, object] | None = None,
    pages: dict[str, bytes | FetchError] | None = None,
    cache: TileCache | None = None,
) -> list[Image | ImageRef]:
    """The images found at ``url``. ``dezoomer="auto"`` tries each registered dezoomer in order.

    Multi-image sources (IIIF manifests, bulk lists) may give :class:`~dezoomify_nb.model.ImageRef`
    entries, resolved later (see :mod:`dezoomify_nb.collection`) by another call to this function.

    Raises :class:`~dezoomify_nb.errors.NoDezoomerFound` listing every dezoomer's reason.
    """
    return resolve_scoped(url, dezoomer=dezoomer, net=net, options=options, pages=pages, cache=cache)[0]


def resolve_scoped(
    url: str,
    *,
    dezoomer: str = "auto",
    net: NetConfig | None = None,
    options: Mapping[str, object] | None = None,
    pages: dict[str, bytes | FetchError] | None = None,
    cache: TileCache | None = None,
) -> tuple[list[Image | ImageRef], NetConfig]:
    """:func:`resolve`, and the config to fetch what it found with (its tiles, its items): ``net`` narrowed
    as the module doc says. Every later fetch for these images must use it."""
    url = url.strip()
    net = scoped(net or NetConfig(), url)
    if not url:
        raise DezoomifyError("empty URL", hint="Give the URL of the image's metadata, or a local path.")
    table = list_dezoomers()
    if dezoomer not in table:  # "iipimage" finds "IIPImage": names are matched ignoring case
        dezoomer = next((n for n in table if n.lower() == dezoomer.lower()), dezoomer)
    if dezoomer == "auto":
        candidates = list(table.items())
    elif dezoomer in table:
        candidates = [(dezoomer, table[dezoomer])]
    else:
        raise DezoomifyError(f"unknown dezoomer {dezoomer!r}", hint=f"Known dezoomers: auto, {', '.join(table)}.")
    owned = pages is None
    pages = {} if pages is None else pages
    try:
        return _resolve(url, candidates, pages, net, options, cache)
    finally:
        if owned:  # the bodies go now, even if an exception (and its traceback) outlives this call
            pages.clear()


def _resolve(
    url: str,
    candidates: list[tuple[str, Dezoomer]],
    pages: dict[str, bytes | FetchError],
    net: NetConfig,
    options: Mapping[str, object] | None,
    cache: TileCache | None,
) -> list[Image | ImageRef]:
    ctx = Context(url, pages, options or {})
    reasons: list[tuple[str, str]] = []
    explained: tuple[str, DezoomifyError] | None = None  # the reason that explains the input best, if any
    for name, dz in candidates:
        try:
            images, found_net = _run_one(dz, ctx, pages, net, cache)
        except (WrongDezoomer, FetchError) as exc:
            log.debug("%s: %s", name, exc)
            reasons.append((name, str(exc)))
            if explained is None and getattr(exc, "explains_input", False):
                explained = (name, exc)
            continue
        except MetadataError as exc:
            if len(candidates) == 1 or getattr(exc, "final", False):
                if not exc.hint and len(candidates) == 1:
                    exc.hint = (f"The {name} dezoomer (forced) could not use this input: check the URL in a browser, "
                                "or let it be detected (--dezoomer auto); --logging debug shows every request.")
                raise
            log.debug("%s: %s", name, exc)
            reasons.append((name, str(exc)))
            if explained is None and getattr(exc, "explains_input", False):
                explained = (name, exc)
            continue
        log.info("%s found %d image(s) at %s", name, len(images), url)
        return [
            replace(im, found_by=im.found_by or name) if isinstance(im, ImageRef)
            else replace(im, dezoomer=im.dezoomer or name, url=im.url or url)
            for im in images
        ], found_net
    err = pages.get(url)
    if isinstance(err, FetchError):
        # the input itself could not be fetched: that, not "no dezoomer", is the useful message
        hint = err.hint or "Check the URL (and your connection); --logging debug shows every request."
        raise type(err)(url, str(err), status=err.status, attempts=err.attempts, hint=hint)
    if explained is not None:  # e.g. a web page without any zoomable image in it: that reason first, its hint
        first = (explained[0], str(explained[1]))
        found = NoDezoomerFound(url, [first] + [r for r in reasons if r != first])
        found.hint = explained[1].hint or found.hint
        raise found
    raise NoDezoomerFound(url, reasons)
