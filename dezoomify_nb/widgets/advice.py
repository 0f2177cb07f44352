"""Errors as the picker shows them: one sentence, advice a notebook user can follow, and the details.

The hints of :mod:`dezoomify_nb.errors` are written for the command line (``--logging debug``,
``-H "Referer: …"``). In a notebook those flags mean nothing, so :func:`notebook_hint` gives the same
advice in the notebook's words (the headers box, the Level menu, ``dz.widget(url, retries=5)``); the
CLI's hints are not changed. :func:`error_parts` splits an exception into what the picker shows: one
sentence, that advice, and the remaining lines for an expandable details section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import errors as E

_LOGGING = ("to see every request, run import logging; logging.basicConfig(); "
            "logging.getLogger(\"dezoomify_nb\").setLevel(\"DEBUG\") in a cell, then Open again")

#: the CLI hints (exact text) and what the picker says instead
EXACT: dict[str, str] = {
    E.REFERER_HINT: ("Many sites only serve their images to their own viewer page: open "
                     "'HTTP headers' and add a line 'Referer: <the viewer page's URL>' (and 'Cookie: …' if "
                     "you are logged in), then Open again."),
    E.TLS_HINT: ("The server's TLS certificate could not be verified. If you trust this server, open it with "
                 "dz.widget(url, accept_invalid_certs=True)."),
    E.NOT_AN_IMAGE_HINT: ("The server answered tile requests with something that is not an image. Open one tile "
                          "URL in a browser tab: an HTML page often means the site wants a 'Referer: …' or "
                          "'Cookie: …' line in 'HTTP headers'."),
    E.TILE_CAP_HINT: ("Tiles larger than the tile size cap were refused; if they are genuine, raise it: "
                      "dz.widget(url, max_tile_bytes=128 * 2**20)."),
    E.NOT_FOUND_HINT: ("The server says these tiles do not exist (HTTP 404/410), so retrying will not help: "
                       "choose another level in the Level menu."),
    E.NoDezoomerFound.hint: ("Check that the URL points to the image's metadata (ImageProperties.xml, .dzi, "
                             "info.json, a IIIF manifest…) or to the page of a museum's viewer; "
                             "dz.widget(url, dezoomer=\"iiif\") forces one format."),
    E.OS_HINT: "Check the file name, the folder and the free disk space.",
    E.BROWSER_HINT: ("The viewer probably builds its image URL with JavaScript: press 'Look with a browser' to "
                     "load the page in headless Chromium and open what its viewer requests."),
}
#: per class (nearest in the MRO wins) when a hint has no notebook wording
DEFAULTS: dict[type[BaseException], str] = {
    E.DezoomifyError: f"{_LOGGING[0].upper()}{_LOGGING[1:]}.",  # "To see every request, …"
    E.DezoomerError: ("Check the URL in a browser tab, or force a format: dz.widget(url, dezoomer=\"iiif\")."),
    E.MetadataError: ("The image's metadata is broken, inconsistent or over a sanity cap. Check the URL in a "
                      "browser tab, or force a format: dz.widget(url, dezoomer=\"iiif\")."),
    E.FetchError: "Check the URL (open it in a browser tab) and your connection.",
    E.TileFetchError: ("Download again (dz.widget(url, cache=\"tiles\") keeps what was fetched), or open it "
                       "with dz.widget(url, retries=5, retry_delay=5, parallelism=2)."),
    E.LevelSelectionError: "Choose a level in the Level menu and a region inside the image.",
    E.CacheError: "Open the image with another cache folder: dz.widget(url, cache=\"other-folder\").",
    E.WriterError: "Check that the folder is writable and has free space, or choose another file name or format.",
    E.ImageTooLargeError: ("Save as PNG (written as it comes, any size), or choose a smaller level or a region "
                           "in the viewer."),
    E.DownloadCancelled: "Press Download again when you want it.",
}
EXACT[E.DownloadError.hint] = DEFAULTS[E.TileFetchError]
for _cls, _hint in E.DEFAULT_HINTS.items():  # the CLI's defaults by class: the notebook's defaults by class
    EXACT.setdefault(_hint, DEFAULTS[_cls])
#: phrases of CLI hints and their notebook wording (applied to hints that are not in EXACT)
PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), r) for p, r in (
    (r";? ?--logging debug (?:shows|to see)[^.;]*", "; " + _LOGGING),
    (r"(?:Run again )?with --logging debug to see what was done", _LOGGING),
    (r",? or pass --overwrite \(overwrite=True in Python\)", ""),
    (r"output name", "file name"),
    (r"--max-width/--max-height|--max-width|--max-height|--zoom-level", "the Level menu"),
    (r"drop --region", "press 'Whole image'"),
    (r"--region", "a region drawn in the viewer"),
    (r"--max-pixels (\d+)", r"dz.widget(url, max_pixels=\1)"),
    (r"--dezoomer auto", "dz.widget(url, dezoomer=\"auto\")"),
    (r"--dezoomer", "dz.widget(url, dezoomer=\"…\")"),
    (r"-H \"([^\"]*)\"", r"a '\1' line in 'HTTP headers'"),
    (r"--tile-cache", "dz.widget(url, cache=\"folder\")"),
    (r"--browser-path", "dz.widget(url, browser_path=\"…\")"),
    (r"\(--browser-timeout\)", "(dz.widget(url, browser_timeout=60))"),
    (r"\(--cookies\)", "(dz.widget(url, cookies=\"cookies.txt\"))"),
))
_CLI_FLAG = re.compile(r"(?<![\w-])--?[a-zA-Z][\w-]*")


def notebook_hint(exc: BaseException) -> str:
    """The advice of ``exc`` in a notebook's words: never a command-line flag."""
    hint = E.hint_for(exc)
    if hint in EXACT:
        return EXACT[hint]
    text = hint
    for pattern, repl in PHRASES:
        text = pattern.sub(repl, text)
    text = text.replace(" ;", ";").replace("; ;", ";").lstrip("; ")
    if text and not _CLI_FLAG.search(text.replace("dz.widget(url,", "")):
        return text[0].upper() + text[1:]
    for cls in type(exc).__mro__:
        if cls in DEFAULTS:
            return DEFAULTS[cls]
    return EXACT[E.OS_HINT] if isinstance(exc, OSError) else ""


@dataclass(frozen=True)
class ErrorParts:
    """What the picker shows of an error: ``sentence`` (one line), ``advice`` and ``details`` (lines)."""

    sentence: str
    advice: str
    details: tuple[str, ...]


#: a sentence is cut at this many characters (the rest goes to the details)
MAX_SENTENCE = 220


def _plain_status(exc: BaseException) -> str:
    """An HTTP failure of the URL itself in plain words, or ``""``."""
    status = getattr(exc, "status", None)
    if not isinstance(exc, E.FetchError) or isinstance(exc, E.TileFetchError) or not isinstance(status, int):
        return ""
    if status in (404, 410):
        return f"There is nothing at this address (the server answered HTTP {status})."
    if status in (401, 403):
        return f"The server refused to give this document (HTTP {status})."
    if status == 429 or status >= 500:
        return f"The server could not answer now (HTTP {status}): try again in a moment."
    return ""


def error_parts(exc: BaseException) -> ErrorParts:
    """Split ``exc`` into one sentence, notebook advice and details (never a traceback)."""
    if isinstance(exc, E.DezoomifyError):
        text, advice = str(exc) or type(exc).__name__, notebook_hint(exc)
    elif isinstance(exc, (ValueError, OSError)) and str(exc):  # a bad header line, a full disk
        text, advice = str(exc), notebook_hint(exc)
    else:
        text, advice = f"Unexpected error ({type(exc).__name__}): {exc}", ""
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [type(exc).__name__]
    first, rest = lines[0], lines[1:]
    plain = _plain_status(exc)
    if plain:  # "HTTP 404 Not Found for https://…": said in words, the server's own line kept in the details
        rest.insert(0, first)
        first = plain
    if len(first) > MAX_SENTENCE:
        rest.insert(0, first)
        first = first[: MAX_SENTENCE - 1].rstrip() + "…"
    first = first.rstrip(":").rstrip()
    if not first.endswith((".", "!", "?", "…")):
        first += "."
    details = [*rest, f"({type(exc).__module__}.{type(exc).__qualname__})"]
    url = getattr(exc, "url", None)
    if isinstance(url, str) and url and url not in text:
        details.insert(0, f"URL: {url}")
    return ErrorParts(first[0].upper() + first[1:], advice, tuple(details))
