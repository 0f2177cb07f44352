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

from ._version import __version__
from .errors import DezoomifyError, DownloadError, hint_for
from .model import DEFAULT_MAX_PIXELS, check_max_pixels
from .net import NetConfig, parse_duration, parse_header, parse_size
from .net.cookies import CookieSet

if TYPE_CHECKING:  # the API (zarr, dask, …) is imported when a download starts: --help stays fast
    from . import api

log = logging.getLogger("dezoomify_nb")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _header(text: str) -> tuple[str, str]:
    try:
        return parse_header(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


_positive = _int_at_least(1)
_natural = _int_at_least(0)


def _region(text: str) -> tuple[int, int, int, int]:
    parts = text.replace(" ", "").split(",")
    if len(parts) != 4 or not all(p.isdigit() for p in parts) or int(parts[2]) == 0 or int(parts[3]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected X,Y,WIDTH,HEIGHT (whole pixels, size > 0)")
    x, y, w, h = (int(p) for p in parts)
    return x, y, w, h


def _pixels(text: str) -> int:
    try:
        return check_max_pixels(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _percent(text: str) -> int:
    value = _natural(text)
    if value > 100:
        raise argparse.ArgumentTypeError("must be between 0 and 100")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dezoomify-nb",
        description="Download a zoomable image (Zoomify, Deep Zoom, IIIF, generic tile URL templates) "
        "from its metadata URL or a local path, and save it as PNG, JPEG or any format Pillow writes.",
        add_help=False,
        epilog="Levels are numbered from 0 = full resolution for every format (dezoomify-rs uses each "
        "format's own order for --zoom-level). Durations accept 10ms, 2s, 1m.",
    )
    p.add_argument("input_uri", nargs="?", metavar="INPUT_URI", help="URL or local path of the image metadata")
    p.add_argument("outfile", nargs="?", metavar="OUTFILE", help="output file; its extension picks the format")
    p.add_argument("-?", "--help", action="help", help="show this help and exit")
    p.add_argument("-V", "--version", action="version", version=f"dezoomify-nb {__version__}")
    p.add_argument("--outfile", dest="outfile_opt", metavar="PATH", help="output file (instead of OUTFILE)")
    p.add_argument("-d", "--dezoomer", default="auto", help="force a dezoomer (default: auto)")
    sel = p.add_argument_group("level selection (default: ask when interactive, else the largest)")
    sel.add_argument("-l", "--largest", action="store_true", help="download the largest level")
    sel.add_argument("-w", "--max-width", type=_positive, metavar="PX", help="largest level at most this wide")
    sel.add_argument("-h", "--max-height", type=_positive, metavar="PX", help="largest level at most this high")
    sel.add_argument("--zoom-level", type=_natural, metavar="N", help="level N (0 = full resolution)")
    sel.add_argument("--image-index", type=_natural, metavar="N",
                     help="image N when several are found, e.g. in a IIIF manifest (0-based; too large: the last)")
    sel.add_argument("--all-sequences", action="store_true",
                     help="IIIF Presentation 2: the images of every sequence of a manifest (default: the first)")
    sel.add_argument("--tile-format", metavar="FMT",
                     help="IIIF: ask for tiles in this format (png, webp, ...) instead of the server's preferred "
                          "one or jpg; refused by the server (4xx), jpg is used")
    p.add_argument("--bulk", metavar="FILE_OR_URL",
                   help="download every image of a list (one 'URL [title]' per line) or IIIF manifest; "
                   "implies --largest unless a level option is given; OUTFILE gives names OUTFILE_0001…")
    net = p.add_argument_group("network")
    net.add_argument("-n", "--parallelism", type=_positive, default=16, help="concurrent requests (default 16)")
    net.add_argument("-i", "--min-interval", type=_duration, default=0.05, metavar="DUR",
                     help="minimum time between two requests (default 50ms)")
    net.add_argument("-r", "--retries", type=_natural, default=1, help="retries per tile (default 1)")
    net.add_argument("--retry-delay", type=_duration, default=2.0, metavar="DUR",
                     help="first retry delay, doubled each time (default 2s)")
    net.add_argument("--timeout", type=_duration, default=30.0, metavar="DUR",
                     help="deadline of a whole request: connect, headers and body (default 30s)")
    net.add_argument("--connect-timeout", type=_duration, default=6.0, metavar="DUR",
                     help="connection timeout (default 6s)")
    net.add_argument("--read-timeout", type=_duration, metavar="DUR",
                     help="longest silence between two reads of a response (default: --timeout)")
    net.add_argument("--max-metadata-size", type=_size, default=NetConfig.max_metadata_bytes, metavar="SIZE",
                     help="largest metadata document (info.json, XML, page, manifest), decoded (default 16MiB)")
    net.add_argument("--max-tile-size", type=_size, default=NetConfig.max_tile_bytes, metavar="SIZE",
                     help="largest tile body, decoded (default 32MiB)")
    net.add_argument("--max-inflight-size", type=_size, default=NetConfig.max_inflight_bytes, metavar="SIZE",
                     help="body bytes held by all the requests in flight together (default 256MiB)")
    net.add_argument("-H", "--header", type=_header, action="append", default=[], metavar="'NAME: VALUE'",
                     help="extra HTTP header, repeatable (e.g. -H 'Referer: https://…' -H 'Cookie: …'); sent only "
                          "to the input URL's site (Referer, User-Agent, Accept…: everywhere)")
    net.add_argument("--header-all-hosts", action="store_true",
                     help="send the -H headers (cookies, tokens) to every host, not only the input URL's site")
    net.add_argument("--referer", metavar="URL",
                     help="the Referer of every request (default: the page the image was found in, if any)")
    net.add_argument("--cookies", metavar="FILE",
                     help="send the cookies of a Netscape cookies.txt (as browser extensions export) to the hosts "
                          "their domain matches")
    net.add_argument("--accept-invalid-certs", action="store_true", help="do not verify TLS certificates")
    net.add_argument("--max-idle-per-host", type=_natural, default=32,
                     help="idle connections kept per host (default 32; 0: a new connection per request)")
    net.add_argument("--transport", choices=["aiohttp", "httpx"], default="aiohttp",
                     help="HTTP client: aiohttp (default: requests on the event loop, least CPU per request) "
                          "or httpx (a client shared by worker threads)")
    net.add_argument("-c", "--tile-cache", metavar="DIR",
                     help="keep tiles (as served) and metadata in DIR; a later run resumes from it")
    net.add_argument("--offline", action="store_true",
                     help="use only what --tile-cache holds; never touch the network")
    net.add_argument("--scheduler", metavar="ADDRESS",
                     help="dask.distributed scheduler (tcp://host:8786): tiles are fetched and decoded on its "
                          "workers; with --bulk each image is saved on a worker (needs the distributed extra)")
    net.add_argument("--cluster-parallelism", type=_positive, metavar="N",
                     help="with --scheduler: at most N requests per host at once across all workers "
                          "(requests then go through httpx)")
    out = p.add_argument_group("output")
    out.add_argument("--compression", type=_percent, default=5,
                     help="0-100: JPEG quality is 100 minus this; PNG zlib effort (default 5)")
    out.add_argument("--format", dest="out_format", metavar="NAME",
                     help="output format instead of OUTFILE's extension: png, jpeg, tiff, tiff-jpeg, iiif "
                          "(folder of IIIF tiles + viewer.html), ome-zarr; .tif/.iiif/.zarr pick them too")
    out.add_argument("--mode", choices=["RGB", "RGBA", "L", "LA"], default="RGB", help="pixel mode (default RGB)")
    out.add_argument("--region", type=_region, metavar="X,Y,W,H",
                     help="save only this rectangle, in full-resolution pixels (only its tiles are fetched)")
    out.add_argument("--overwrite", action="store_true",
                     help="replace OUTFILE if it exists (it is replaced only once the new image is complete)")
    out.add_argument("--max-pixels", type=_pixels, default=DEFAULT_MAX_PIXELS, metavar="N",
                     help="refuse metadata declaring more pixels than this (default 1e12)")
    p.add_argument("--logging", default="warning", choices=["debug", "info", "warning", "error"],
                   help="log level (default warning)")
    return p


def _ask(prompt: str) -> str:
    print(prompt, end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.strip()


def _pick(items: Sequence[str], title: str, question: str) -> int:
    print(title, file=sys.stderr)
    for i, item in enumerate(items):
        print(f"{i:>2}. {item}", file=sys.stderr)
    while True:
        answer = _ask(question)
        if answer.isdigit() and int(answer) < len(items):
            return int(answer)
        print(f"'{answer}' is not a valid number", file=sys.stderr)


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
    while True:
        answer = _ask("Which image do you want to download? ")
        if answer.isdigit() and int(answer) < len(images):
            return images[int(answer)]
        print(f"'{answer}' is not a valid image number", file=sys.stderr)


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
                     max_pixels=args.max_pixels, tile_format=args.tile_format, all_sequences=args.all_sequences)
    images = list(found) if isinstance(found, ImageCollection) else [found]
    for image in images:
        if isinstance(image, CollectionImage) and args.image_index is not None:
            image.image_index = args.image_index  # an entry that is itself a manifest: which of its images
    print(f"Bulk mode: {len(images)} image(s) from {args.bulk}", file=sys.stderr)
    summary = bulk.save_all(
        images, outfile=outfile, max_width=args.max_width, max_height=args.max_height, zoom_level=args.zoom_level,
        compression=args.compression, progress=True, overwrite=args.overwrite,
        report=lambda line: print(line, file=sys.stderr), client=_cluster(args),
    )
    return 0 if summary.ok else 1


def run(args: argparse.Namespace) -> int:
    if args.outfile and args.outfile_opt:
        raise DezoomifyError("OUTFILE and --outfile both given", hint="Give the output file once.")
    outfile = args.outfile_opt or args.outfile
    url = args.input_uri
    if not url and not args.bulk:
        if not _interactive():
            raise DezoomifyError("no INPUT_URI given", hint="dezoomify-nb URL [OUTFILE]; see dezoomify-nb --help")
        url = _ask("Enter an URL or a path to the image metadata: ")
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
    if args.bulk:
        return run_bulk(args, net, outfile)
    from . import api

    images = api.open_all(url, dezoomer=args.dezoomer, net=net, mode=args.mode, cache=args.tile_cache,
                          max_pixels=args.max_pixels, tile_format=args.tile_format, all_sequences=args.all_sequences)
    image = _choose_image(images, args.image_index)
    level = image.level_index(
        largest=args.largest, max_width=args.max_width, max_height=args.max_height, zoom_level=args.zoom_level
    )
    if level is None:
        if _interactive() and len(image.levels) > 1:
            level = _pick([lv.describe() for lv in image.levels], "Found the following zoom levels:",
                          "Which level do you want to download? ")
        else:
            level = 0
            lv = image.levels[0]
            print(f"No level chosen: downloading the largest ({lv.width}x{lv.height}).", file=sys.stderr)
    try:
        result = image.save(outfile, level=level, compression=args.compression, progress=True,
                            overwrite=args.overwrite, format=args.out_format, region=args.region,
                            client=_cluster(args))
    except DownloadError as exc:
        if exc.path:
            print(f"warning: {exc}", file=sys.stderr)
            print(f"hint: {hint_for(exc)}", file=sys.stderr)
            return 1
        raise
    print(f"Image successfully saved to '{os.path.abspath(result.path)}'", file=sys.stderr)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(logging, args.logging.upper())
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("dezoomify_nb").setLevel(level)
    if level > logging.DEBUG:
        for noisy in ("httpx", "httpcore", "aiohttp"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    own_process = argv is None  # the command itself (not main([...]) called in a test or a program)
    try:
        with _stop_signals(own_process):
            return run(args)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
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
