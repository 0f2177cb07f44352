"""The driver: run dezoomers, fetching whatever bytes they ask for, until one yields images."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .dezoomers.base import Context, Dezoomer
from .errors import DezoomifyError, FetchError, MetadataError, NeedsData, NoDezoomerFound, WrongDezoomer
from .model import Image
from .net import NetConfig, fetch_many
from .net.loop import run
from .registry import list_dezoomers

log = logging.getLogger("dezoomify_nb.resolve")

#: at most this many fetch rounds per dezoomer, and pages in all (a hostile input cannot loop us)
MAX_ROUNDS = 64
MAX_PAGES = 512


def _run_one(dezoomer: Dezoomer, ctx: Context, pages: dict[str, bytes | FetchError], net: NetConfig) -> list[Image]:
    for _ in range(MAX_ROUNDS):
        try:
            return dezoomer.images(ctx)
        except NeedsData as need:
            missing = [u for u in need.urls if u not in pages]
            if not missing:
                raise MetadataError(f"{dezoomer.name} asked again for {need.urls[0]}") from None
            if len(pages) + len(missing) > MAX_PAGES:
                raise MetadataError(f"{dezoomer.name} asked for more than {MAX_PAGES} documents") from None
            log.debug("%s needs %s", dezoomer.name, ", ".join(missing))
            pages.update(run(fetch_many(missing, net)))
    raise MetadataError(f"{dezoomer.name} did not finish after {MAX_ROUNDS} rounds")


def resolve(
    url: str,
    *,
    dezoomer: str = "auto",
    net: NetConfig | None = None,
    options: Mapping[str, object] | None = None,
    pages: dict[str, bytes | FetchError] | None = None,
) -> list[Image]:
    """The images found at ``url``. ``dezoomer="auto"`` tries each registered dezoomer in order.

    Raises :class:`~dezoomify_nb.errors.NoDezoomerFound` listing every dezoomer's reason.
    """
    net = net or NetConfig()
    url = url.strip()
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
    pages = {} if pages is None else pages
    ctx = Context(url, pages, options or {})
    reasons: list[tuple[str, str]] = []
    for name, dz in candidates:
        try:
            images = _run_one(dz, ctx, pages, net)
        except (WrongDezoomer, FetchError) as exc:
            log.debug("%s: %s", name, exc)
            reasons.append((name, str(exc)))
            continue
        except MetadataError as exc:
            if len(candidates) == 1:
                raise
            log.debug("%s: %s", name, exc)
            reasons.append((name, str(exc)))
            continue
        log.info("%s found %d image(s) at %s", name, len(images), url)
        from dataclasses import replace

        return [replace(im, dezoomer=im.dezoomer or name, url=im.url or url) for im in images]
    err = pages.get(url)
    if isinstance(err, FetchError) and err.status is None:
        # the input itself is unreachable: that, not "no dezoomer", is the useful message
        raise FetchError(url, str(err), hint="Check the URL and your connection; --logging debug shows details.")
    raise NoDezoomerFound(url, reasons)
