"""``python -m dezoomify_nb.testing serve``: run the loopback tile server standalone.

Prints the URL of every kind, of the samples (a IIIF manifest, a viewer page, a bulk list: see
:mod:`dezoomify_nb.testing.samples`) and commands to paste (or only ``--print-url KIND``), and serves
until Ctrl-C or SIGTERM.  ``--ready-file PATH`` writes the base URL (one line,
``http://127.0.0.1:PORT``) to PATH atomically once the server is listening, and
removes it on exit, so a Makefile can start the server in the background::

    python -m dezoomify_nb.testing serve --ready-file .demo-server & \\
    while [ ! -s .demo-server ]; do sleep 0.1; done; \\
    URL="$$(cat .demo-server)/zoomify/ImageProperties.xml"
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from .images import make_test_image
from .samples import SAMPLES, add_samples, try_commands
from .tileserver import KINDS, TileServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dezoomify_nb.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a synthetic image in every tiled format")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    serve.add_argument("--width", type=int, default=2000)
    serve.add_argument("--height", type=int, default=1500)
    serve.add_argument("--channels", type=int, choices=(1, 3, 4), default=3)
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--tile-size", type=int, default=256)
    serve.add_argument("--latency", type=float, default=0.0, help="seconds of delay per tile request")
    serve.add_argument("--lossless", action="store_true", help="PNG bytes even at .jpg URLs")
    serve.add_argument("--print-url", metavar="KIND", choices=KINDS + SAMPLES,
                       help="print only this kind's (or sample's: manifest, page, list) URL")
    serve.add_argument("--ready-file", metavar="PATH", help="write the base URL here once listening")
    return parser


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    image = make_test_image(args.width, args.height, seed=args.seed, channels=args.channels)
    server = TileServer(
        image,
        latency=args.latency,
        tile_size=args.tile_size,
        host=args.host,
        port=args.port,
        lossless=args.lossless,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server.start()
    try:
        samples = add_samples(server)
        if args.print_url:
            print(samples[args.print_url] if args.print_url in samples else server.url(args.print_url), flush=True)
        else:
            print(f"Serving a {args.width}x{args.height} test image on {server.base_url} (127.0.0.1 only)")
            print("\nIn every format:")
            for kind, url in server.urls().items():
                print(f"  {kind:<14} {url}")
            print("\nSamples:")
            print(f"  {'manifest':<14} {samples['manifest']}  (IIIF, 3 images)")
            print(f"  {'page':<14} {samples['page']}  (a museum page with a viewer; opens in a browser)")
            print(f"  {'list':<14} {samples['list']}  (a bulk list)")
            print("\nTry, in another terminal (downloads go to the current folder):")
            for what, command in try_commands(samples):
                print(f"  # {what}\n  {command}")
            print("\nCtrl-C to stop.", flush=True)
        if args.ready_file:
            _write_atomic(args.ready_file, server.base_url + "\n")
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        if args.ready_file:
            try:
                os.remove(args.ready_file)
            except OSError:
                pass
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
