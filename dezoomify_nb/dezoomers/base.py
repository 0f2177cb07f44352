"""The dezoomer contract: pure parsers that ask for bytes and never do I/O.

A dezoomer's :meth:`Dezoomer.images` receives a :class:`Context`. It reads the bytes it needs with
``ctx.get(url)``; when those bytes have not been fetched yet, ``get`` raises
:class:`~dezoomify_nb.errors.NeedsData` and the driver (:mod:`dezoomify_nb.resolve`) fetches them and
calls ``images`` again from the start with a context that now holds them. A parse is therefore a pure
function of the input URL and the bytes fetched so far, which makes every parser testable offline from
files in ``tests/data/``: build a :class:`Context` with the pages dict filled in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import FetchError, NeedsData
from ..model import Image


@dataclass
class Context:
    """The input URL and the pages fetched so far.

    ``pages`` maps a URL to its bytes, or to a :class:`~dezoomify_nb.errors.FetchError` when fetching
    it failed (a 404 while probing, for instance).
    """

    url: str
    pages: Mapping[str, bytes | FetchError] = field(default_factory=dict)
    #: options given by the user that a dezoomer may honour (e.g. ``{"tile_size": 512}``)
    options: Mapping[str, object] = field(default_factory=dict)

    def get(self, url: str | None = None) -> bytes:
        """The bytes of ``url`` (default: the input URL). Raises NeedsData or the FetchError."""
        url = self.url if url is None else url
        got = self.pages.get(url)
        if got is None:
            raise NeedsData([url])
        if isinstance(got, FetchError):
            raise got
        return got

    def try_get(self, url: str) -> bytes | None:
        """Like :meth:`get`, but a failed fetch gives None (used when probing)."""
        try:
            return self.get(url)
        except FetchError:
            return None

    def prefetch(self, urls: Iterable[str]) -> None:
        """Ask for several URLs at once (fetched concurrently) if any is missing."""
        missing = [u for u in urls if u not in self.pages]
        if missing:
            raise NeedsData(missing)


class Dezoomer(ABC):
    """One format. Subclasses set ``name`` and ``description`` and implement :meth:`images`."""

    name: str = ""
    description: str = ""

    @abstractmethod
    def images(self, ctx: Context) -> list[Image]:
        """Parse ``ctx.url`` (asking for bytes through ``ctx``) into one or more images.

        Raise :class:`~dezoomify_nb.errors.WrongDezoomer` (with a short reason) when the input is not
        for this dezoomer, :class:`~dezoomify_nb.errors.MetadataError` when it is but is broken.
        """
