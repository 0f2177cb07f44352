"""Command line: ``dezoomify-nb [options] INPUT_URI [OUTFILE]`` (same as ``python -m dezoomify_nb``).

Options follow dezoomify-rs. Every expected failure ends in one ``error:`` line, a ``hint:`` line and
exit status 1 (2 for a bad command line, 3 for an internal error); ``--logging debug`` adds the details
and the traceback. Ctrl-C (SIGINT), SIGTERM and SIGHUP stop the run the same way — temporary files
removed, one ``error:`` line, no traceback — with the shell's status for that signal: 128 + its number
(130, 143, 129); a signal the shell ignores (``nohup``) stays ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .arguments import build_parser as build_parser
from .errors import NOTICE, DezoomifyError, DownloadError, hint_for, hint_for_failures
from .inputs import check_input
from .net import NetConfig
from .net.cookies import CookieSet

if TYPE_CHECKING:  # the API (zarr, dask, …) is imported when a download starts: --help stays fast
    from . import api

log = logging.getLogger("dezoomify_nb")


#: -q: only errors are printed (set by main)
_quiet = False
#: a prompt's line is open on stderr (an interruption first ends it)
_prompt_open = False


def _info(line: str) -> None:
    """A line of news on stderr (none with -q), written above a progress bar if one is shown."""
    if not _quiet:
        _write(line)


def _write(line: str) -> None:
    from tqdm import tqdm

    with contextlib.suppress(OSError, ValueError):
        if getattr(tqdm, "_instances", None):
            tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)


class _Format(logging.Formatter):
    """``warning: …`` for what may be wrong, the bare message for news (NOTICE), ``info name: …`` below."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.levelno <= logging.DEBUG:
            message += "\n" + self.formatException(record.exc_info)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        if record.levelno >= NOTICE:
            return message
        return f"{record.levelname.lower()} {record.name}: {message}"


class _BarSafeHandler(logging.Handler):
    """Log lines go above the progress bar (tqdm.write) while one is shown, never into its line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write(self.format(record))
        except Exception:  # logging must never break a download
            self.handleError(record)


def _setup_logging(level: int) -> None:
    """Log lines on stderr through :class:`_BarSafeHandler`, unless the program calling :func:`main` (or
    pytest) already configured logging: then only the library's level is set."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _BarSafeHandler)]:
        root.removeHandler(handler)
    if not root.handlers:
        handler = _BarSafeHandler()
        handler.setFormatter(_Format())
        root.addHandler(handler)
        root.setLevel(level)


def _read_line() -> str:
    """A line of standard input ("" at its end). On a terminal, waited for in short slices: a Ctrl-C that the
    kernel delivered to another thread (the network's) is only handled when the main thread runs Python code,
    never while it is blocked in read(). A terminal in canonical mode gives one line per read."""
    try:
        fd = sys.stdin.fileno()
        tty = os.name != "nt" and os.isatty(fd)
    except (AttributeError, OSError, ValueError):  # a stand-in stdin (tests, notebooks)
        tty = False
    if not tty:
        return sys.stdin.readline()
    import select

    while not select.select([fd], [], [], 0.1)[0]:
        pass
    return os.read(fd, 65536).decode(sys.stdin.encoding or "utf-8", "replace")


def _ask(prompt: str) -> str:
    global _prompt_open
    _prompt_open = True  # set before the prompt is shown; stays set if Ctrl-C interrupts the read
    print(prompt, end="", file=sys.stderr, flush=True)
    line = _read_line()
    _prompt_open = False
    if not line:
        raise EOFError
    return line.strip()


def _ask_index(question: str, count: int, default: int = 0, default_label: str = "") -> int:
    """``Question [0: largest]: ``: a number in 0..count-1, Enter for the default; anything else asked again
    with the range."""
    shown = f"{default}: {default_label}" if default_label else f"{default}"
    while True:
        answer = _ask(f"{question} [{shown}]: ")
        if not answer:
            return default
        if answer.isdigit() and int(answer) < count:
            return int(answer)
        print(f"'{answer}' is not a valid number: enter a number from 0 to {count - 1}, or Enter for {default}",
              file=sys.stderr)


def _level_sizes(image: api.ZoomableImage, region: tuple[int, int, int, int] | None) -> list[tuple[int, int, int]]:
    """``(width, height, tiles)`` of what each level saves: the whole level, or the part of it under
    ``region`` (full-resolution pixels: ``--region``, or the part a manifest canvas shows) and its tiles."""
    sizes = []
    for k, lv in enumerate(image.levels):
        if region is None:
            sizes.append((lv.width, lv.height, lv.n_tiles))
            continue
        x, y, w, h = image.region_in_level(region, k)
        cols = -(-(x + w) // lv.tile_width) - x // lv.tile_width
        rows = -(-(y + h) // lv.tile_height) - y // lv.tile_height
        sizes.append((w, h, cols * rows))
    return sizes


def _level_rows(levels: Sequence[tuple[int, int, int]]) -> list[str]:
    """``  0   2000 x 1500     48 tiles``: sizes aligned in columns (largest first)."""
    cells = [(f"{w}", f"{h}", f"{n}") for w, h, n in levels]
    ws = [max(len(c[k]) for c in cells) for k in range(3)]
    iw = len(str(len(cells) - 1))
    return [f"  {i:>{iw}}  {w:>{ws[0]}} x {h:<{ws[1]}}  {n:>{ws[2]}} tile{'s' if n != '1' else ''}"
            for i, (w, h, n) in enumerate(cells)]


#: levels listed by the prompt: all down to this many pixels on their larger side (at least 4); the tiny ones
#: below (a Deep Zoom pyramid goes down to 1 x 1) are summed up in one line, and can still be chosen
SMALLEST_LISTED = 64


def _pick_level(image: api.ZoomableImage, region: tuple[int, int, int, int] | None) -> int:
    """Ask for a level, listing the size each saves (of the region, when there is one)."""
    region = region if region is not None else image.region
    if region is not None:
        x, y, w, h = region
        print(f"Found the following zoom levels (of the region {x},{y},{w},{h}"
              f"{' the source shows' if image.region == region else ''}):", file=sys.stderr)
    else:
        print("Found the following zoom levels:", file=sys.stderr)
    sizes = _level_sizes(image, region)
    rows = _level_rows(sizes)
    shown = max(4, sum(1 for w, h, _ in sizes if max(w, h) >= SMALLEST_LISTED))
    if len(rows) - shown < 2:
        shown = len(rows)
    for row in rows[:shown]:
        print(row, file=sys.stderr)
    if shown < len(rows):
        w, h, _ = sizes[-1]
        print(f"  … {len(rows) - shown} smaller levels ({shown}-{len(rows) - 1}, down to {w} x {h})", file=sys.stderr)
    return _ask_index("Level", len(sizes), 0, "largest")


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _image_line(i: int, image: api.ZoomableImage) -> str:
    """``[i] title (W x H pixels)``: the exact size once resolved, else the manifest's hint, else ``?``."""
    size = image.size_hint if hasattr(image, "size_hint") else (image.width, image.height)
    dims = f"{size[0]} x {size[1]}" if size else "? x ?"
    return f"[{i}] {image.title or f'Image {i + 1}'} ({dims} pixels)"


def _choose_image(images: Sequence[api.ZoomableImage], image_index: int | None) -> api.ZoomableImage:
    """dezoomify-rs §11.1 step 2: ``--image-index`` (too large: the last), else ask on a terminal, else
    the first with a note. Only the chosen image's metadata is fetched."""
    if len(images) == 1:
        return images[0]
    if image_index is not None:
        return images[min(image_index, len(images) - 1)]
    if not _interactive():
        print(f"Found {len(images)} images; downloading the first, {images[0].title or 'Image 1'!r}. "
              "Choose another with --image-index N (0-based), or get them all with --bulk.", file=sys.stderr)
        for i, image in enumerate(images[:20]):  # what --image-index can pick (known without fetching)
            print(_image_line(i, image), file=sys.stderr)
        if len(images) > 20:
            print(f"... and {len(images) - 20} more", file=sys.stderr)
        return images[0]
    print("Found the following images:", file=sys.stderr)
    for i, image in enumerate(images):
        print(_image_line(i, image), file=sys.stderr)
    return images[_ask_index("Image", len(images))]


def _cluster(args: argparse.Namespace) -> object | None:
    """The dask.distributed client of ``--scheduler``, or None."""
    if not args.scheduler:
        return None
    from .distributed import as_client

    return as_client(args.scheduler)


def run_bulk(args: argparse.Namespace, net: NetConfig, outfile: str | None) -> int:
    """``--bulk SOURCE``: every image of a list or manifest in turn; exit 1 if any failed or was partial."""
    from . import bulk
    from .collection import CollectionImage, ImageCollection

    if args.input_uri:  # ``--bulk LIST OUTFILE``: the one positional is the output name
        if outfile:
            raise DezoomifyError("INPUT_URI and --bulk both given",
                                 hint="In bulk mode the images come from the list: dezoomify-nb --bulk LIST [OUTFILE].")
        outfile = args.input_uri
    from . import api

    found = api.open(args.bulk, dezoomer=args.dezoomer, net=net, mode=args.mode, cache=args.tile_cache,
                     max_pixels=args.max_pixels, tile_format=args.tile_format, all_sequences=args.all_sequences,
                     bbox=args.bbox, bbox_crs=args.bbox_crs)
    images = list(found) if isinstance(found, ImageCollection) else [found]
    for image in images:
        if isinstance(image, CollectionImage) and args.image_index is not None:
            image.image_index = args.image_index  # an entry that is itself a manifest: which of its images
    if args.list or args.json:
        return _list(args, args.bulk, images)
    _info(f"Bulk mode: {len(images)} image(s) from {args.bulk}")
    summary = bulk.save_all(
        images, outfile=outfile, max_width=args.max_width, max_height=args.max_height, zoom_level=args.zoom_level,
        compression=args.compression, progress=True, overwrite=args.overwrite,
        report=_info, client=_cluster(args), redownload=args.redownload, archive=args.archive,
        partial=not args.no_partial, format=args.out_format,
    )
    if not summary.ok:
        again = ("with the tile cache, only the tiles still missing are fetched" if args.tile_cache
                 else "add -c DIR to keep the tiles, so that only the missing ones are fetched")
        _info(f"hint: run the same command again later: complete images are skipped, the others downloaded again "
              f"in place ({again}).")
    return 0 if summary.ok else 1


def run_repair(args: argparse.Namespace, net: NetConfig) -> int:
    """``--repair OUT``: the missing tiles of an earlier download, then OUT written again."""
    from . import api, resume

    if args.input_uri or args.outfile or args.outfile_opt or args.bulk:
        raise DezoomifyError("--repair takes no INPUT_URI, OUTFILE or --bulk",
                             hint="dezoomify-nb --repair OUT [-c DIR]: the source is read from OUT.failed.json.")
    result = api.repair(args.repair, cache=args.tile_cache, progress=True, net=net)
    path = os.path.abspath(result.path)
    if result.failed:
        print(f"warning: {len(result.failed)} tiles out of {result.tiles} are still missing from '{path}' "
              f"(listed in {resume.failed_path(path).name})", file=sys.stderr)
        print(f"hint: {hint_for_failures([r for _, r in result.failed]) or 'Try --repair again later.'}",
              file=sys.stderr)
        return 1
    _info(f"Repaired: '{path}' is complete")
    return 0


def _list(args: argparse.Namespace, source: str, images: Sequence[api.ZoomableImage]) -> int:
    """``--list`` / ``--json``: every image with its levels on standard output; exit 1 if one failed."""
    from . import listing

    if args.image_index is not None and not args.bulk:
        images = [images[min(args.image_index, len(images) - 1)]]
    recs = listing.records(images)
    print(listing.as_json(source, recs) if args.json else listing.as_text(recs))
    failed = [r for r in recs if r.get("error")]
    if failed:
        _info(f"{len(failed)} of {len(recs)} image(s) could not be read")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    if args.outfile and args.outfile_opt:
        raise DezoomifyError("OUTFILE and --outfile both given", hint="Give the output file once.")
    outfile = args.outfile_opt or args.outfile
    if args.list_dezoomers:
        from . import listing

        print(listing.dezoomers_json() if args.json else listing.dezoomers_text())
        return 0
    url = args.input_uri
    check_input(url)
    check_input(args.bulk, "--bulk")
    if not url and not args.bulk and not args.repair:
        if not _interactive():
            raise DezoomifyError("no INPUT_URI given", hint="dezoomify-nb URL [OUTFILE]; see dezoomify-nb --help")
        url = _ask("Enter a URL or a path to the image metadata: ")
    check_input(url)
    net = NetConfig(
        parallelism=args.parallelism,
        min_interval=args.min_interval,
        timeout=args.timeout,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout or None,
        max_metadata_bytes=args.max_metadata_size,
        max_tile_bytes=args.max_tile_size,
        max_inflight_bytes=args.max_inflight_size,
        retries=args.retries,
        retry_delay=args.retry_delay,
        headers=tuple(args.header) + ((("Referer", args.referer),) if args.referer else ()),
        header_all_hosts=args.header_all_hosts,
        accept_invalid_certs=args.accept_invalid_certs,
        max_idle_per_host=args.max_idle_per_host,
        offline=args.offline,
        cluster_parallelism=args.cluster_parallelism,
        transport=args.transport,
        cookies=CookieSet.of(args.cookies) if args.cookies else None,
    )
    if args.offline and not args.tile_cache:
        raise DezoomifyError("--offline needs --tile-cache", hint="Give the cache directory of an earlier run: -c DIR.")
    if args.repair:
        return run_repair(args, net)
    if (args.archive or args.redownload) and not args.bulk:
        raise DezoomifyError(f"{'--archive' if args.archive else '--redownload'} applies to --bulk runs",
                             hint="A single download never skips: give an OUTFILE (or --overwrite to replace one).")
    if args.bbox_crs and not args.bbox:
        raise DezoomifyError("--bbox-crs without --bbox", hint="Give the box too: --bbox W,S,E,N --bbox-crs EPSG:N.")
    if args.bbox and args.region:
        raise DezoomifyError("both --region and --bbox given", hint="Give --region X,Y,W,H or --bbox, not both.")
    if args.bulk:
        return run_bulk(args, net, outfile)
    from . import api

    browser = {"on": True, "auto": "auto"}.get(args.browser or "off", False)
    images = api.open_all(url, dezoomer=args.dezoomer, net=net, mode=args.mode, cache=args.tile_cache,
                          max_pixels=args.max_pixels, tile_format=args.tile_format, all_sequences=args.all_sequences,
                          bbox=args.bbox, bbox_crs=args.bbox_crs, browser=browser, browser_path=args.browser_path,
                          browser_timeout=args.browser_timeout)
    if args.list or args.json:
        return _list(args, url, images)

    image = _choose_image(images, args.image_index)
    level = image.level_index(
        largest=args.largest, max_width=args.max_width, max_height=args.max_height, zoom_level=args.zoom_level
    )
    if level is None:
        if _interactive() and len(image.levels) > 1:
            level = _pick_level(image, args.region)
        else:
            level = 0
            lv = image.levels[0]
            _info(f"No level chosen: downloading the largest ({lv.width}x{lv.height}).")
    try:
        result = image.save(outfile, level=level, compression=args.compression, progress=True,
                            overwrite=args.overwrite, format=args.out_format, region=args.region,
                            client=_cluster(args), partial=not args.no_partial)
    except DownloadError as exc:
        if exc.path:
            print(f"warning: {exc}", file=sys.stderr)
            print(f"hint: {hint_for(exc)}", file=sys.stderr)
            return 1
        raise
    _info(f"Image successfully saved to '{os.path.abspath(result.path)}'")
    if result.georeference:
        _info(f"Georeference: {result.georeference}")
    return 0


class Terminated(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) raised in the main thread as Ctrl-C is, so every cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: signals that stop a run (exit status 128 + number: 130, 143, 129), unless they were ignored (nohup)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _stop_signals(own_process: bool):
    """While running, a stop signal raises :class:`Terminated` in the main thread and quiets the library's
    log (retries of requests still in flight are no news any more). A second one during the cleanup is
    ignored, or, when this process is the CLI's own, ends it at once. Previous handlers are put back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    logger = logging.getLogger("dezoomify_nb")
    level = logger.level
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:
            if own_process:
                os._exit(128 + signum)
            return
        stopping = True
        logger.setLevel(logging.CRITICAL)
        raise Terminated(signum)

    previous = {}
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not own_process:
            logger.setLevel(level)


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr may be gone (SIGHUP: the terminal closed)
        print(line, file=sys.stderr, flush=True)


def _lone_h(argv: Sequence[str]) -> bool:
    """``-h`` given without its number (the help habit of other tools)."""
    args = list(argv)
    return "-h" in args and (args[-1] == "-h" or not args[args.index("-h") + 1].isdigit())


def _joined_boxes(argv: Sequence[str]) -> list[str]:
    """``--bbox -5.2,40,…`` as ``--bbox=-5.2,40,…``: argparse takes a value starting with ``-`` for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--bbox" and arg[:1] == "-" and (arg[1:2].isdigit() or arg[1:2] == "."):
            out[-1] = f"--bbox={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """The command; ``argv`` None: the process's own arguments (then it may end the process at once)."""
    from . import progress

    previous = progress.get_mode()
    try:
        return _main(argv)
    finally:
        progress.set_mode(previous)  # main([...]) called by a program leaves the API as it was


def _browser_flag(raw: list[str]) -> list[str]:
    """``--browser`` alone is ``--browser=on``: the URL after it is the input, not the option's value."""
    return [("--browser=on" if a == "--browser" and (k + 1 == len(raw) or raw[k + 1] not in ("on", "auto", "off"))
             else a) for k, a in enumerate(raw)]


def _main(argv: Sequence[str] | None) -> int:
    global _quiet
    parser = build_parser()
    raw = sys.argv[1:] if argv is None else list(argv)
    if _lone_h(raw):
        print("error: -h is --max-height PX (as in dezoomify-rs) and needs a number of pixels", file=sys.stderr)
        print("hint: for help use --help or -?", file=sys.stderr)
        return 2
    args = parser.parse_args(_browser_flag(_joined_boxes(raw)))
    _quiet = args.quiet
    level = logging.ERROR if args.quiet else NOTICE if args.logging == "notice" else getattr(logging,
                                                                                              args.logging.upper())
    _setup_logging(level)
    logging.getLogger("dezoomify_nb").setLevel(level)
    from . import progress

    mode = "none" if args.quiet else args.progress
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "plain"
    progress.set_mode(mode)
    if level > logging.DEBUG:
        for noisy in ("httpx", "httpcore", "aiohttp"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    own_process = argv is None  # the command itself (not main([...]) called in a test or a program)
    try:
        with _stop_signals(own_process):
            return run(args)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        if _prompt_open:
            _say("")  # Ctrl-C at a prompt: the error on its own line
        _say("error: interrupted" if signum == signal.SIGINT else f"error: stopped by {signal.Signals(signum).name}")
        if own_process:  # the output is cleaned up: do not wait for requests still blocked in worker threads
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(128 + signum)
        return 128 + signum
    except EOFError:
        print("\nerror: reached end of input", file=sys.stderr)  # the prompt's line is still open
        print("hint: the question needs an answer on standard input; choose without asking with --largest "
              "(or --zoom-level, --max-width) and --image-index.", file=sys.stderr)
        return 1
    except DezoomifyError as exc:
        if level <= logging.DEBUG:
            log.debug("details", exc_info=exc)
        print(f"error: {exc}", file=sys.stderr)
        print(f"hint: {hint_for(exc)}", file=sys.stderr)  # the raise site's hint, else its class's default
        return 1
    except OSError as exc:  # disk full, permission denied, …
        if level <= logging.DEBUG:
            log.debug("details", exc_info=exc)
        print(f"error: {exc}", file=sys.stderr)
        print(f"hint: {hint_for(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still no traceback unless asked for
        log.debug("internal error", exc_info=exc)
        print(f"error: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("hint: this is a bug in dezoomify-nb; please report it with the output of --logging debug.",
              file=sys.stderr)
        return 3
