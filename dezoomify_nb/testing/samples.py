"""Sample documents beside the tile server, to try the CLI without writing Python (``testing serve``).

Under ``/samples/``:

- ``manifest.json`` — a IIIF Presentation 3 manifest, "Sample atlas", of three canvases: the whole image
  (IIIF 3), its upper-left quarter and its lower-right quarter (IIIF 2, regions chosen by a
  ``FragmentSelector``): three different pictures, so ``dezoomify-nb MANIFEST`` asks which one;
- ``viewer.html`` — a museum's object page whose OpenSeadragon viewer shows the Deep Zoom image (the
  page dezoomer finds it; the file is named after the page title). It works in a browser too: the
  OpenSeadragon it loads is served beside it;
- ``list.txt`` — a bulk list: three formats, one line with a title, one without, and the manifest.

:func:`add_samples` serves them and returns their URLs; :func:`try_commands` the commands to paste.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from importlib import resources
from typing import Any

PREFIX = "/samples/"
#: names of the samples (``--print-url``)
SAMPLES = ("manifest", "page", "list")
PAGE_TITLE = "The test card — Sample Museum"


def _manifest(server: Any, base: str) -> dict[str, Any]:
    w, h = server.level_sizes("iiif3")[0]
    quarters = {"upper-left quarter": (0, 0, w // 2, h // 2), "lower-right quarter": (w // 2, h // 2, w - w // 2,
                                                                                     h - h // 2)}

    def canvas(n: int, label: str, body: dict[str, Any], cw: int, ch: int) -> dict[str, Any]:
        cid = f"{base}/canvas/{n}"
        return {"id": cid, "type": "Canvas", "label": {"en": [label]}, "width": cw, "height": ch,
                "items": [{"id": f"{cid}/page", "type": "AnnotationPage", "items": [
                    {"id": f"{cid}/page/a", "type": "Annotation", "motivation": "painting", "target": cid,
                     "body": body}]}]}

    def service(kind: str) -> dict[str, Any]:
        svc = server.url(kind).removesuffix("/info.json")
        if kind == "iiif3":
            return {"id": f"{svc}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                    "service": [{"id": svc, "type": "ImageService3", "profile": "level1"}]}
        return {"id": f"{svc}/full/full/0/default.jpg", "type": "Image", "format": "image/jpeg",
                "service": [{"@id": svc, "@type": "ImageService2", "profile": "http://iiif.io/api/image/2/level2.json"}]}

    canvases = [canvas(1, "Plate 1, the whole card", service("iiif3"), w, h)]
    for n, (label, (x, y, cw, ch)) in enumerate(quarters.items(), 2):
        body = {"type": "SpecificResource", "source": service("iiif2"),
                "selector": {"type": "FragmentSelector", "value": f"xywh={x},{y},{cw},{ch}"}}
        canvases.append(canvas(n, f"Plate {n}, {label}", body, cw, ch))
    return {"@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{base}/manifest.json",
            "type": "Manifest", "label": {"en": ["Sample atlas"]},
            "metadata": [{"label": {"en": ["Title"]}, "value": {"en": ["Sample atlas"]}}], "items": canvases}


def _page(server: Any) -> str:
    dzi = server.url("dzi-jpg")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{PAGE_TITLE}</title>
<meta property="og:title" content="{PAGE_TITLE}">
<style>body {{ font-family: sans-serif; margin: 2em; }} #viewer {{ width: 90vw; height: 70vh; background: #222; }}</style>
</head><body>
<h1>The test card</h1>
<p>Sample Museum, object 42. Drag to pan, scroll to zoom. Paste this page's address into dezoomify-nb.</p>
<div id="viewer"></div>
<script src="openseadragon.min.js"></script>
<script>
  OpenSeadragon({{ id: "viewer", showNavigationControl: false, tileSources: "{dzi}" }});
</script>
</body></html>
"""


def _list(server: Any, manifest: str) -> str:
    return (f"# A sample bulk list: one \"URL [title]\" per line; # comments and blank lines are ignored\n"
            f"{server.url('zoomify')}   Kitchen, Zoomify\n"
            f"{server.url('dzi-png')}   Deep Zoom card\n"
            f"{server.url('iiif3')}\n"
            f"# a manifest: its first image (--image-index N for another)\n"
            f"{manifest}   The atlas\n")


def add_samples(server: Any) -> dict[str, str]:
    """Serve the samples on ``server`` (a started :class:`~dezoomify_nb.testing.TileServer`); their URLs."""
    base = server.base_url + PREFIX.rstrip("/")
    manifest = f"{base}/manifest.json"
    osd = resources.files("dezoomify_nb.writers").joinpath("templates/openseadragon.min.js").read_bytes()
    server.serve_files(PREFIX, {
        "manifest.json": json.dumps(_manifest(server, base), indent=1),
        "viewer.html": _page(server),
        "list.txt": _list(server, manifest),
        "openseadragon.min.js": osd,
    })
    return {"manifest": manifest, "page": f"{base}/viewer.html", "list": f"{base}/list.txt"}


def program() -> str:
    """How to run dezoomify-nb from any folder: ``dezoomify-nb`` when that is the one on PATH next to this
    Python, else its absolute path (``/…/.venv/bin/dezoomify-nb``: another terminal starts elsewhere), else
    ``python -m dezoomify_nb``."""
    beside = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "dezoomify-nb")
    if not os.path.exists(beside):
        return f"{shlex.quote(os.path.abspath(sys.executable))} -m dezoomify_nb"
    found = shutil.which("dezoomify-nb")
    if found and os.path.realpath(found) == os.path.realpath(beside):
        return "dezoomify-nb"
    return shlex.quote(beside)


def try_commands(samples: dict[str, str]) -> list[tuple[str, str]]:
    """``(what it shows, command)`` pairs, ready to paste into another terminal."""
    dz = program()
    return [
        ("a manifest of 3 images: which one? (asks)", f"{dz} {samples['manifest']}"),
        ("a museum page: the viewer's image is found", f"{dz} {samples['page']}"),
        ("every line of a list, then again (skipped)", f"{dz} --bulk {samples['list']} -c tiles"),
        ("see before you fetch", f"{dz} --list {samples['manifest']}"),
    ]
