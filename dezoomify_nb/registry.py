"""The table of dezoomers and writers: built-ins, loaded lazily, plus entry points.

Third-party packages add formats through the entry-point groups ``dezoomify_nb.dezoomers`` and
``dezoomify_nb.writers`` (``name = "package.module:Class"``). A plugin that fails to load gives a
``RuntimeWarning`` instead of breaking the import.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dezoomers.base import Dezoomer

#: Built-in dezoomers, in the order auto-detection tries them (dezoomify-rs's order).
BUILTIN_DEZOOMERS: dict[str, str] = {
    "custom": "dezoomify_nb.dezoomers.custom_yaml:CustomYamlDezoomer",
    # map tile templates with a zoom variable ({z}/{x}/{y}), ArcGIS …/MapServer, …/ImageServer: known by the URL
    # alone, before anything fetches it
    "xyz": "dezoomify_nb.dezoomers.xyz:XYZDezoomer",
    "arcgis": "dezoomify_nb.dezoomers.arcgis:ArcGISDezoomer",
    "google_arts_and_culture": "dezoomify_nb.dezoomers.google_arts:GoogleArtsDezoomer",
    # JS-only formats known by their URL alone (…/lizardtech/iserv/calcrgn?, …/pageview/<n>): before zoomify,
    # which would probe …/pageview/<n>/ImageProperties.xml
    "lizardtech": "dezoomify_nb.dezoomers.lizardtech:LizardTechDezoomer",
    "vls": "dezoomify_nb.dezoomers.vls:VlsDezoomer",
    # by extension (.zif), or by its first bytes behind a script (…/DisplayImage?id=42): after the dezoomers
    # that know a URL by its shape alone, before anything fetches the whole file
    "zif": "dezoomify_nb.dezoomers.zif:ZifDezoomer",
    "zoomify": "dezoomify_nb.dezoomers.zoomify:ZoomifyDezoomer",
    # a .json document with "tilejson" and "tiles": before iiif_manifest, which reads any JSON
    "tilejson": "dezoomify_nb.dezoomers.tilejson:TileJSONDezoomer",
    "iiif_manifest": "dezoomify_nb.dezoomers.iiif_manifest:IIIFManifestDezoomer",
    "iiif_georef": "dezoomify_nb.dezoomers.iiif_georef:IIIFGeorefDezoomer",
    # JS-only formats recognised by their URL (or by the page iiif_manifest has already fetched): before
    # iiif, which would read Hungaricana's {"width", "height"} as an info.json, and before IIPImage
    # (topview.json.php?FIF=…)
    "hungaricana": "dezoomify_nb.dezoomers.hungaricana:HungaricanaDezoomer",
    "topviewer": "dezoomify_nb.dezoomers.topviewer:TopViewerDezoomer",
    "xlimage": "dezoomify_nb.dezoomers.xlimage:XLimageDezoomer",
    "wmts": "dezoomify_nb.dezoomers.wmts:WMTSDezoomer",
    "pnav": "dezoomify_nb.dezoomers.pnav:PnavDezoomer",
    "iiif": "dezoomify_nb.dezoomers.iiif:IIIFDezoomer",
    "deepzoom": "dezoomify_nb.dezoomers.deepzoom:DeepZoomDezoomer",
    # a tile URL whose own format did not take it (metadata elsewhere, or none: krpano, …/{z}/{x}/{y})
    "tile_url": "dezoomify_nb.dezoomers.tile_url:TileUrlDezoomer",
    "generic": "dezoomify_nb.dezoomers.generic:GenericDezoomer",
    "pff": "dezoomify_nb.dezoomers.pff:PffDezoomer",
    "krpano": "dezoomify_nb.dezoomers.krpano:KrpanoDezoomer",
    "IIPImage": "dezoomify_nb.dezoomers.iipimage:IIPImageDezoomer",
    "nypl": "dezoomify_nb.dezoomers.nypl:NYPLDezoomer",
    # JS-only formats also recognised by what a page contains: after every dezoomer above, which see the page first
    "fsi": "dezoomify_nb.dezoomers.fsi:FsiDezoomer",
    "micrio": "dezoomify_nb.dezoomers.micrio:MicrioDezoomer",
    "mnesys": "dezoomify_nb.dezoomers.mnesys:MnesysDezoomer",
    # a web page: the tile sources it mentions (after every format and site-specific dezoomer above)
    "page": "dezoomify_nb.dezoomers.page:PageDezoomer",
    "bulk_text": "dezoomify_nb.dezoomers.bulk_text:BulkTextDezoomer",
}


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@functools.cache
def list_dezoomers() -> dict[str, Dezoomer]:
    """Name → dezoomer instance, built-ins first (in auto-detection order), then plugins."""
    found: dict[str, Dezoomer] = {}
    for name, target in BUILTIN_DEZOOMERS.items():
        found[name] = _load(target)()
    for ep in entry_points(group="dezoomify_nb.dezoomers"):
        if ep.name in found:
            continue
        try:
            found[ep.name] = ep.load()()
        except Exception as exc:  # a broken plugin must not break us
            warnings.warn(f"dezoomer plugin {ep.name!r} failed to load: {exc}", RuntimeWarning, stacklevel=2)
    return found


def refresh() -> None:
    """Forget the cached tables (after installing a plugin)."""
    list_dezoomers.cache_clear()
