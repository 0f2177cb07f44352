"""Run a dezoomer offline, the way :mod:`dezoomify_nb.resolve` does, answering its requests yourself.

For unit tests of dezoomers (ours and plugins'): no network, every request recorded.

>>> from dezoomify_nb.registry import list_dezoomers
>>> drv = Driver({"http://h/a/ImageProperties.xml": b'<IMAGE_PROPERTIES WIDTH="10" HEIGHT="5" TILESIZE="3" NUMTILES="8"/>'})
>>> [lv.size for lv in drv.run(list_dezoomers()["zoomify"], "http://h/a/ImageProperties.xml")[0].levels]
[(10, 5), (6, 2), (2, 2)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..dezoomers.base import Context, Dezoomer
from ..errors import FetchError, NeedsData
from ..model import Image, ImageRef, Level


def not_found(url: str) -> FetchError:
    return FetchError(url, f"HTTP 404 Not Found for {url}", status=404)


def urls(level: Level) -> list[str]:
    """Every tile URL of a level, row-major."""
    return [level.tile_url(c, r) for c, r in level.tile_positions()]


class Driver:
    """Runs a dezoomer like the real driver, answering from ``serve``; records requests and rounds.

    ``serve`` is a function ``url -> bytes | FetchError`` or a mapping (missing URLs answer 404).
    """

    def __init__(self, serve: Callable[[str], bytes | FetchError] | Mapping[str, bytes]) -> None:
        if isinstance(serve, Mapping):
            table = dict(serve)
            self.serve: Callable[[str], bytes | FetchError] = lambda url: table.get(url) or not_found(url)
        else:
            self.serve = serve
        self.pages: dict[str, bytes | FetchError] = {}
        self.requests: list[str] = []
        self.rounds = 0

    def run(self, dezoomer: Dezoomer, url: str, max_rounds: int = 64) -> list[Image | ImageRef]:
        for _ in range(max_rounds):
            try:
                return dezoomer.images(Context(url, self.pages))
            except NeedsData as need:
                self.rounds += 1
                missing = [u for u in need.urls if u not in self.pages]
                assert missing, f"asked again for {need.urls}"
                for u in missing:
                    self.requests.append(u)
                    self.pages[u] = self.serve(u)
        raise AssertionError("too many rounds")
