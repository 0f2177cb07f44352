"""The command line's arguments: the parser of ``dezoomify-nb`` (:func:`build_parser`) and its value types.

:mod:`.cli` runs what it parses (and re-exports :func:`build_parser`). Imports nothing heavy: ``--help``
stays fast.
"""

from __future__ import annotations

import argparse

from ._version import __version__
from .model import DEFAULT_MAX_PIXELS, check_max_pixels
from .net import NetConfig, parse_duration, parse_header, parse_size


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


def _bbox(text: str) -> tuple[float, float, float, float]:
    from .errors import GeoError
    from .geo import parse_bbox

    try:
        return parse_bbox(text)
    except GeoError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _crs(text: str) -> str:
    from .errors import GeoError
    from .geo import parse_crs

    try:
        return parse_crs(text)
    except GeoError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (e.g. EPSG:3857)") from None


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
    web = p.add_argument_group("pages whose viewer runs JavaScript")
    web.add_argument("--browser", nargs="?", const="on", choices=["on", "auto", "off"], metavar="auto",
                     help="load the page in headless Chromium and open what its viewer requests; "
                          "--browser auto: only when the page itself shows nothing")
    web.add_argument("--browser-path", metavar="PATH",
                     help="the Chromium binary (default: /usr/bin/chromium, else one Playwright installed)")
    web.add_argument("--browser-timeout", type=_duration, default=30.0, metavar="DUR",
                     help="the browser's whole time budget (default 30s)")
    out = p.add_argument_group("output")
    out.add_argument("--compression", type=_percent, default=5,
                     help="0-100: JPEG quality is 100 minus this; PNG zlib effort (default 5)")
    out.add_argument("--format", dest="out_format", metavar="NAME",
                     help="output format instead of OUTFILE's extension: png, jpeg, tiff, tiff-jpeg, iiif "
                          "(folder of IIIF tiles + viewer.html), ome-zarr; .tif/.iiif/.zarr pick them too")
    out.add_argument("--mode", choices=["RGB", "RGBA", "L", "LA"], default="RGB", help="pixel mode (default RGB)")
    out.add_argument("--region", type=_region, metavar="X,Y,W,H",
                     help="save only this rectangle, in full-resolution pixels (only its tiles are fetched)")
    out.add_argument("--bbox", type=_bbox, metavar="W,S,E,N",
                     help="map sources (XYZ, TileJSON, ArcGIS, WMTS): save only this box, west,south,east,north in "
                          "longitude/latitude (or in --bbox-crs); only the tiles under it are fetched")
    out.add_argument("--bbox-crs", type=_crs, metavar="EPSG:N",
                     help="the CRS of --bbox (default EPSG:4326, lon/lat; others than EPSG:3857 need pyproj)")
    out.add_argument("--overwrite", action="store_true",
                     help="replace OUTFILE if it exists (it is replaced only once the new image is complete)")
    out.add_argument("--max-pixels", type=_pixels, default=DEFAULT_MAX_PIXELS, metavar="N",
                     help="refuse metadata declaring more pixels than this (default 1e12)")
    res = p.add_argument_group("resume and repair")
    res.add_argument("--redownload", action="store_true",
                     help="--bulk: download every image again (default: skip those whose output an earlier run "
                          "completed; their files are replaced)")
    res.add_argument("--archive", metavar="FILE",
                     help="--bulk: skip the items listed in FILE and add each one finished (its source URL, one a "
                          "line), as yt-dlp's and gallery-dl's download archives")
    res.add_argument("--no-partial", action="store_true",
                     help="write no image with missing tiles (exit 1); OUT.failed.json still lists them")
    res.add_argument("--repair", metavar="OUT",
                     help="fetch only the tiles OUT.failed.json lists (the others from the tile cache of that "
                          "download, or -c DIR) and write OUT again")
    see = p.add_argument_group("see before you fetch (only metadata is fetched)")
    see.add_argument("--list", action="store_true",
                     help="list every image of the input (or of --bulk) with its levels: index, size, tiles, tile "
                          "format, dezoomer, title; download nothing")
    see.add_argument("--json", action="store_true", help="the same as --list, as JSON on standard output")
    see.add_argument("--list-dezoomers", action="store_true",
                     help="list the dezoomers: name, what each accepts, an example URL (with --json: as JSON)")
    ui = p.add_argument_group("terminal")
    ui.add_argument("-q", "--quiet", action="store_true", help="print only errors (no progress, no news)")
    ui.add_argument("--progress", choices=["auto", "bar", "plain", "none"], default="auto",
                    help="tile progress: a bar, plain lines every few seconds (for logs), or none; auto (default): "
                         "a bar when stderr is a terminal, else plain lines")
    ui.add_argument("--logging", default="notice", choices=["debug", "info", "notice", "warning", "error"],
                    help="log level (default notice: what was found and warnings)")
    return p
