"""How fast the picker's "Save to this computer" sends a file from the kernel to the page, in Voila.

A one-cell notebook writes ``--mb`` MB of random bytes and shows a :class:`StatusCard` offering them; headless
Chromium (Debian's) clicks the button and waits for the browser's download; the time from the click to the
download and the bytes (compared with the file) are printed. ``--chunk`` sets the bytes per message.

    .venv/bin/python bench/bench_save_copy.py --mb 100 --chunk 1048576
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser.jupyter_apps import jupyter_app, open_notebook  # noqa: E402

CELL = """import os
from pathlib import Path
from dezoomify_nb.widgets import cards, status
status.CHUNK_BYTES = {chunk}
path = Path("big.bin")
path.write_bytes(os.urandom({mb} * 1000 * 1000))
card = status.StatusCard()
card.offer(path)
card.value = '<div class="dz-done-facts">big.bin</div>' + cards.save_button(path.name, "{mb} MB")
card"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=100, help="file size in MB (10^6 bytes)")
    ap.add_argument("--chunk", type=int, default=1024 * 1024, help="bytes per message")
    args = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "a", "metadata": {}, "outputs": [],
                     "source": CELL.format(mb=args.mb, chunk=args.chunk)}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    with tempfile.TemporaryDirectory(prefix="dz-bench-save-") as tmp, jupyter_app("voila", Path(tmp)) as app:
        (app.root / "save.ipynb").write_text(json.dumps(nb))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(accept_downloads=True)
            page.route(lambda url: not url.startswith("http://127.0.0.1"), lambda route: route.abort())
            open_notebook(page, app, "save.ipynb")
            button = page.locator(".dz-save-copy")
            expect(button).to_be_visible(timeout=120_000)
            t0 = time.monotonic()
            with page.expect_download(timeout=600_000) as info:
                button.click()
            seconds = time.monotonic() - t0
            got = Path(tmp) / "got.bin"
            info.value.save_as(got)
            same = got.read_bytes() == (app.root / "big.bin").read_bytes()
            browser.close()
    print(f"{args.mb} MB in chunks of {args.chunk} B: {seconds:.2f} s from the click to the download "
          f"({args.mb / seconds:.0f} MB/s); bytes equal: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
