"""See before you fetch: what ``--list``, ``--json`` and ``--list-dezoomers`` print.

``--list`` (like ``yt-dlp -F``) shows every image of the input with its levels — index, size, tiles, tile size
and format — its dezoomer and title; only metadata is fetched. ``--json`` gives the same records as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from .errors import DezoomifyError

#: an example input of each built-in dezoomer (``<…>``: a part to fill in)
EXAMPLES: dict[str, str] = {
    "custom": "tiles.yaml (a local file: url_template, x/y ranges, variables)",
    "google_arts_and_culture": "https://artsandculture.google.com/asset/<name>/<id>",
    "lizardtech": "https://example.org/lizardtech/iserv/calcrgn?cat=<catalog>&item=<image>.sid",
    "vls": "https://example.org/content/pageview/<id>",
    "zif": "https://example.org/images/<image>.zif",
    "zoomify": "https://example.org/tiles/<image>/ImageProperties.xml",
    "tilejson": "https://tiles.example.org/<layer>/tiles.json",
    "iiif_manifest": "https://example.org/iiif/<book>/manifest.json",
    "iiif_georef": "https://annotations.allmaps.org/images/<id> (a IIIF Georeference Annotation)",
    "hungaricana": "https://static-cdn.hungaricana.hu/tile/imagesize/<path>.ecw",
    "topviewer": "https://images.memorix.nl/<server>/topviewjson/memorix/<uuid>",
    "xlimage": "https://example.org/<image>.imgi?cmd=info",
    "wmts": "https://example.org/wmts/1.0.0/WMTSCapabilities.xml#layer=<name>",
    "arcgis": "https://example.org/arcgis/rest/services/<name>/MapServer (a cached service; …/ImageServer too)",
    "xyz": "https://tiles.example.org/<layer>/{z}/{x}/{y}.png (with --bbox W,S,E,N unless tile 0/0/0 exists)",
    "pnav": "https://catalog.shm.ru/entity/OBJECT/2117418",
    "iiif": "https://example.org/iiif/<identifier>/info.json",
    "deepzoom": "https://example.org/tiles/<image>.dzi",
    "tile_url": "https://example.org/tiles/<image>/TileGroup3/5-12-7.jpg (any tile a viewer requested)",
    "generic": "https://example.org/tiles/<image>/tile_{{X}}_{{Y}}.jpg",
    "pff": "https://example.org/zoomify/servlet?file=/images/<image>.pff&requestType=1",
    "krpano": "https://example.org/tour/tour.xml",
    "IIPImage": "https://example.org/fcgi-bin/iipsrv.fcgi?FIF=<image>.tif",
    "nypl": "https://digitalcollections.nypl.org/items/<uuid>",
    "fsi": "https://example.org/fsi/server?type=info&source=<image>.tif",
    "micrio": "https://example.org/api/getTilesInfo?object_id=<id>",
    "mnesys": "https://example.org/datas/playlists/<id>.xml",
    "page": "https://example.org/collection/object/<id> (a web page with a zoomable image viewer)",
    "bulk_text": "images.txt (one 'URL [title]' per line; with --bulk)",
}

_FORMATS = {"jpg": "jpg", "jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "tif": "tif", "tiff": "tif",
            "jp2": "jp2", "bmp": "bmp", "avif": "avif", "jxl": "jxl"}


def tile_format(level: Any) -> str:
    """The format of a level's tiles: the level's own ``format``, else the extension of its first tile URL
    (IIPImage's JTL: jpg), else ``?``."""
    fmt = getattr(level, "format", None)
    if isinstance(fmt, str) and fmt:
        return _FORMATS.get(fmt.lower(), fmt.lower())
    try:
        url = level.tile_url(0, 0)
    except Exception:  # a level whose tiles are not plain URLs (ranges of a file, …)
        return "?"
    if not isinstance(url, str):
        return "?"
    parts = urlsplit(url)
    if "JTL=" in parts.query.upper():
        return "jpg"
    ext = parts.path.rsplit("/", 1)[-1].rpartition(".")[2].lower()
    return _FORMATS.get(ext, "?")


def image_record(index: int, image: Any) -> dict[str, Any]:
    """One image as a JSON-ready record; its metadata is fetched if not yet (a failure is the ``error``)."""
    record: dict[str, Any] = {"index": index, "title": image.title, "dezoomer": image.dezoomer, "url": image.url}
    try:
        levels = image.levels
    except DezoomifyError as exc:
        record.update(error=str(exc), levels=[])
        return record
    record.update(url=image.url, dezoomer=image.dezoomer, title=image.title,
                  width=levels[0].width, height=levels[0].height)
    record["levels"] = [
        {"index": i, "width": lv.width, "height": lv.height, "tiles": lv.n_tiles, "tile_width": lv.tile_width,
         "tile_height": lv.tile_height, "tile_format": tile_format(lv)}
        for i, lv in enumerate(levels)
    ]
    region = getattr(image, "region", None)
    if region is not None:  # the part of the image its source paints (a manifest canvas): what is saved
        record["region"] = [int(v) for v in region]
    crs = getattr(image, "crs", None)
    if crs is not None:  # a map: its CRS, level 0's extent, each level's geotransform
        record["crs"] = crs
        transforms = [image.transform_of(i) for i in range(len(levels))]
        if transforms[0] is not None:
            from .geo import LONLAT, bounds_of, transform_bbox

            record["bounds"] = list(bounds_of(transforms[0], levels[0].width, levels[0].height))
            try:  # in longitude/latitude too (closed-form for Web Mercator, else pyproj when installed)
                record["lonlat_bounds"] = list(transform_bbox(tuple(record["bounds"]), crs, LONLAT))
            except DezoomifyError:
                pass
        for lv_record, transform in zip(record["levels"], transforms, strict=True):
            lv_record["transform"] = list(transform) if transform is not None else None
    return record


def records(images: Iterable[Any]) -> list[dict[str, Any]]:
    return [image_record(i, image) for i, image in enumerate(images)]


def as_json(source: str, recs: Sequence[dict[str, Any]]) -> str:
    return json.dumps({"input": source, "images": list(recs)}, indent=2, ensure_ascii=False)


def as_text(recs: Sequence[dict[str, Any]]) -> str:
    """``--list``: a block per image, its levels in aligned columns."""
    out: list[str] = []
    for rec in recs:
        title = rec["title"] or f"Image {rec['index'] + 1}"
        out.append(f"[{rec['index']}] {title}")
        out.append(f"    {rec['dezoomer']}  {rec['url']}")
        if rec.get("region"):
            x, y, w, h = rec["region"]
            out.append(f"    region {x},{y},{w},{h} of the image: what its source shows, saved by default "
                       f"({w} x {h} px at level 0)")
        if rec.get("crs"):
            box = ", ".join(f"{v:.10g}" for v in rec["bounds"]) if rec.get("bounds") else "ground control points"
            out.append(f"    {rec['crs'] if len(rec['crs']) < 40 else 'WKT CRS'}  bounds (W, S, E, N): {box}")
            if rec.get("lonlat_bounds") and rec["crs"] != "EPSG:4326":
                lonlat = ", ".join(f"{v:.6f}" for v in rec["lonlat_bounds"])
                out.append(f"    {'lon/lat':<{min(len(rec['crs']), 40)}}  bounds (W, S, E, N): {lonlat}")
        if rec.get("error"):
            out.append(f"    error: {rec['error']}")
            out.append("")
            continue
        head = ("level", "size", "tiles", "tile", "format")
        ww = max(len(str(lv["width"])) for lv in rec["levels"])
        hw = max(len(str(lv["height"])) for lv in rec["levels"])
        rows = [(str(lv["index"]), f"{lv['width']:>{ww}} x {lv['height']:<{hw}}", str(lv["tiles"]),
                 f"{lv['tile_width']}x{lv['tile_height']}", lv["tile_format"]) for lv in rec["levels"]]
        widths = [max(len(r[k]) for r in [head, *rows]) for k in range(5)]
        for r in [head, *rows]:
            cells = [r[0].rjust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2]), r[3].ljust(widths[3]), r[4]]
            out.append("    " + "  ".join(cells).rstrip())
        out.append("")
    return "\n".join(out).rstrip("\n")


def dezoomers_text(width: int | None = None) -> str:
    """``--list-dezoomers``: each name, then what it accepts and an example input (indented, wrapped to the
    terminal's width); in auto-detection order."""
    import shutil
    import textwrap

    from .registry import list_dezoomers

    width = width or max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    found = list_dezoomers()
    out = [f"{len(found)} dezoomers, in the order --dezoomer auto tries them:"]
    for name, dz in found.items():
        out += ["", name]
        out += textwrap.wrap(dz.description or "(no description)", width - 1, initial_indent="    ",
                             subsequent_indent="    ")
        example = EXAMPLES.get(name) or getattr(dz, "example", "")
        if example:
            out.append(f"    e.g. {example}")
    return "\n".join(out)


def dezoomers_json() -> str:
    from .registry import list_dezoomers

    return json.dumps([{"name": name, "accepts": dz.description, "example": EXAMPLES.get(name)
                        or getattr(dz, "example", None)} for name, dz in list_dezoomers().items()],
                      indent=2, ensure_ascii=False)
