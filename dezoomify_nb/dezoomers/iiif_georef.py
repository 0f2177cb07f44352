"""IIIF Georeference Annotations (the IIIF georeference extension, as Allmaps makes them): the GCPs of a map.

A Georeference Annotation (``"motivation": "georeferencing"``) targets an image — a ``SpecificResource``
whose ``source`` is an IIIF image service (``ImageService1/2/3``, with its ``width`` and ``height``) or a
``Canvas`` — and its body is a GeoJSON ``FeatureCollection`` of ground control points: each a ``Point`` (WGS 84
longitude, latitude) with ``properties.resourceCoords`` (x, y: pixels of the target). The body's
``transformation`` (``polynomial`` of ``options.order`` 1–3, or ``thinPlateSpline``) says how to warp.
Allmaps' first version is read too: ``target.service[0]`` the image service, ``properties.pixelCoords``,
the size in the mask's ``<svg width height>``, the motivation left out.

Read here: a standalone annotation, or an ``AnnotationPage`` of them (what ``annotations.allmaps.org`` serves),
each annotation of an image service becoming an :class:`~dezoomify_nb.model.ImageRef` to the service's
``info.json`` with :attr:`~dezoomify_nb.model.ImageRef.georef` (CRS ``EPSG:4326``, the GCPs, the warp), scaled
to the image's real size when it resolves. IIIF manifests (``iiif_manifest``) read the annotations *inline*
in a canvas's ``annotations`` with :func:`canvas_georefs`. Not read: the resource mask (the ``SvgSelector``
polygon of the map's own area: the whole image is saved), annotations that target a ``Canvas`` standalone
(open the manifest that has them inline), annotation pages referenced by a manifest but not inline, and
Allmaps' own extensions (a resource CRS other than WGS 84).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_SIDE, GeoRef, ImageRef, resolve_relative
from ._common import load_json
from .base import Context, Dezoomer

log = logging.getLogger(__name__)

NAME = "iiif_georef"
MAX_ANNOTATIONS = 1000
MAX_GCPS = 1000
_SERVICE_TYPES = ("ImageService1", "ImageService2", "ImageService3")


@dataclass(frozen=True)
class Georeference:
    """One Georeference Annotation: what it targets (``source`` id and type, its declared size) and the
    :class:`~dezoomify_nb.model.GeoRef` of its GCPs (pixels of the target)."""

    source: str
    kind: str  # "ImageService2", "Canvas", …
    width: int | None
    height: int | None
    georef: GeoRef
    title: str | None = None


def _id(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        v = obj.get("id", obj.get("@id", ""))
        return v if isinstance(v, str) else ""
    return ""


def _type(obj: Any) -> str:
    v = obj.get("type", obj.get("@type", "")) if isinstance(obj, dict) else ""
    return v if isinstance(v, str) else ""


def _number(v: Any, limit: float) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    v = float(v)
    return v if math.isfinite(v) and abs(v) <= limit else None


def _size(v: Any) -> int | None:
    n = _number(v, MAX_SIDE)
    return int(n) if n is not None and n >= 1 else None


def is_georeferencing(anno: Any) -> bool:
    """An Annotation with the motivation ``georeferencing`` (Allmaps' first version may leave it out: then
    a FeatureCollection body of points with pixel coordinates)."""
    if not isinstance(anno, dict) or _type(anno) not in ("Annotation", "oa:Annotation"):
        return False
    motivation = anno.get("motivation")
    if motivation is None:
        body = anno.get("body")
        features = body.get("features") if isinstance(body, dict) and _type(body) == "FeatureCollection" else None
        first = features[0] if isinstance(features, list) and features else None
        props = first.get("properties") if isinstance(first, dict) else None
        return isinstance(props, dict) and ("resourceCoords" in props or "pixelCoords" in props)
    motivations = motivation if isinstance(motivation, list) else [motivation]
    return any(isinstance(m, str) and m.rsplit(":", 1)[-1] == "georeferencing" for m in motivations)


def annotations_in(doc: Any) -> Iterator[dict[str, Any]]:
    """The Georeference Annotations of ``doc``: an Annotation, an AnnotationPage (``items``), or a list."""
    if isinstance(doc, list):
        items = doc
    elif isinstance(doc, dict) and _type(doc) in ("AnnotationPage", "sc:AnnotationList"):
        items = doc.get("items", doc.get("resources", []))
    else:
        items = [doc]
    for anno in (items if isinstance(items, list) else [])[:MAX_ANNOTATIONS]:
        if is_georeferencing(anno):
            yield anno


def warp_of(body: dict[str, Any]) -> str:
    """The body's ``transformation`` as :attr:`GeoRef.warp <dezoomify_nb.model.GeoRef.warp>`."""
    t = body.get("transformation")
    if not isinstance(t, dict):
        return ""
    kind = t.get("type")
    if kind == "thinPlateSpline":
        return kind
    if kind == "polynomial":
        options = t.get("options") if isinstance(t.get("options"), dict) else {}
        order = options.get("order", 1)
        return f"polynomial{order}" if order in (1, 2, 3) else "polynomial1"
    return ""


def gcps_of(body: Any) -> tuple[tuple[float, float, float, float], ...]:
    """``(x, y, longitude, latitude)`` of each valid GCP of a FeatureCollection body (others are skipped)."""
    features = body.get("features") if isinstance(body, dict) else None
    out = []
    for feature in (features if isinstance(features, list) else [])[:MAX_GCPS]:
        if not isinstance(feature, dict):
            continue
        props, geometry = feature.get("properties"), feature.get("geometry")
        coords = props.get("resourceCoords", props.get("pixelCoords")) if isinstance(props, dict) else None
        point = geometry.get("coordinates") if isinstance(geometry, dict) and geometry.get("type") == "Point" else None
        if not (isinstance(coords, list) and isinstance(point, list) and len(coords) == 2 and len(point) >= 2):
            continue
        x, y = _number(coords[0], 10 * MAX_SIDE), _number(coords[1], 10 * MAX_SIDE)
        lon, lat = _number(point[0], 360), _number(point[1], 90)
        if None not in (x, y, lon, lat):
            out.append((x, y, lon, lat))  # type: ignore[arg-type]
    return tuple(out)


def _label(v: Any) -> str | None:
    """A IIIF label (a string, a language map, a v2 list) as text: its first value."""
    for _ in range(4):
        if isinstance(v, str):
            return v.strip()[:500] or None
        if isinstance(v, dict):
            v = v.get("@value", next(iter(v.values()), None) if "en" not in v else v["en"])
        elif isinstance(v, list):
            v = v[0] if v else None
        else:
            return None
    return None


def info_json(service_id: str, base: str) -> str:
    url = resolve_relative(base, service_id)
    return url if url.endswith("info.json") else url.rstrip("/") + "/info.json"


def _title(source: dict[str, Any]) -> str | None:
    labels = []
    node: Any = source
    for _ in range(3):  # the image, its canvas, the canvas's manifest
        parents = node.get("partOf") if isinstance(node, dict) else None
        node = parents[0] if isinstance(parents, list) and parents else None
        label = _label(node.get("label")) if isinstance(node, dict) else None
        if label:
            labels.insert(0, label)
    return " - ".join(labels) or None


_SVG_SIZE_RE = re.compile(r'<svg\b[^>]*?\bwidth="(\d{1,8})"[^>]*?\bheight="(\d{1,8})"|'
                          r'<svg\b[^>]*?\bheight="(\d{1,8})"[^>]*?\bwidth="(\d{1,8})"')


def _svg_size(selector: Any) -> dict[str, int]:
    value = selector.get("value") if isinstance(selector, dict) else None
    m = _SVG_SIZE_RE.search(value[:2000]) if isinstance(value, str) else None
    if not m:
        return {}
    w, h = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
    return {"width": int(w), "height": int(h)}


def parse_annotation(anno: dict[str, Any]) -> Georeference | None:
    """One Georeference Annotation, or None (with a log line) when it has no usable target or < 3 GCPs."""
    target = anno.get("target")
    source = target.get("source") if isinstance(target, dict) and _type(target) == "SpecificResource" else target
    services = target.get("service") if isinstance(target, dict) else None
    if isinstance(services, list) and services and isinstance(services[0], dict):  # Allmaps' first version:
        source = {**services[0], **_svg_size(target.get("selector"))}  # the service, the size in the mask's SVG
    source_id = _id(source)
    if not source_id.startswith(("http://", "https://")):
        log.warning("a Georeference Annotation without an http(s) target was skipped")
        return None
    gcps = gcps_of(anno.get("body"))
    if len(gcps) < 3:
        log.warning("the Georeference Annotation of %s has %d usable GCPs (3 are needed); skipped",
                    source_id, len(gcps))
        return None
    body = anno.get("body")
    warp = warp_of(body) if isinstance(body, dict) else ""
    src = source if isinstance(source, dict) else {}
    return Georeference(source_id, _type(src), _size(src.get("width")), _size(src.get("height")),
                        GeoRef("EPSG:4326", None, gcps, warp), _title(src))


def scaled(ref: Georeference, width: int | None, height: int | None) -> GeoRef:
    """The GCPs in ``width × height`` pixels (the target's declared size is another scale of them)."""
    if not (ref.width and ref.height and width and height) or (ref.width, ref.height) == (width, height):
        return ref.georef
    sx, sy = width / ref.width, height / ref.height
    return GeoRef(ref.georef.crs, None, tuple((x * sx, y * sy, a, b) for x, y, a, b in ref.georef.gcps),
                  ref.georef.warp)


def canvas_georefs(canvas: dict[str, Any]) -> list[Georeference]:
    """The Georeference Annotations inline in a v3 canvas's ``annotations`` pages."""
    out: list[Georeference] = []
    pages = canvas.get("annotations")
    for page in pages if isinstance(pages, list) else []:
        for anno in annotations_in(page):
            parsed = parse_annotation(anno)
            if parsed is not None:
                out.append(parsed)
    return out


def _service_key(url: str) -> str:
    return url.removesuffix("/info.json").rstrip("/")


def matching(refs: list[Georeference], canvas_id: str, service_id: str | None) -> Georeference | None:
    """The annotation of the painted image: one targeting its image service, else its canvas."""
    if service_id:
        for ref in refs:
            if _service_key(ref.source) == _service_key(service_id):
                return ref
    return next((ref for ref in refs if ref.kind == "Canvas" and ref.source == canvas_id), None)


class IIIFGeorefDezoomer(Dezoomer):
    name = NAME
    description = "IIIF Georeference Annotation (Allmaps): the annotated image services, with their GCPs"

    def images(self, ctx: Context) -> list[ImageRef]:  # type: ignore[override]
        data = ctx.get()
        head = data[: 1 << 20]
        if b"georeferencing" not in head and b"Coords" not in head:
            raise WrongDezoomer("not a IIIF Georeference Annotation")
        try:
            doc = load_json(data)
        except MetadataError:
            raise WrongDezoomer("not JSON") from None
        annotations = list(annotations_in(doc))
        if not annotations:
            raise WrongDezoomer("no annotation with the motivation 'georeferencing'")
        out: list[ImageRef] = []
        for anno in annotations:
            ref = parse_annotation(anno)
            if ref is None:
                continue
            if not ref.kind.startswith("ImageService") and ref.kind != "":
                log.warning("%s: a Georeference Annotation of a %s is not read alone; open the manifest that "
                            "has it", ctx.url, ref.kind or "resource")
                continue
            out.append(ImageRef(info_json(ref.source, ctx.url), ref.title, "iiif", ref.width, ref.height,
                                found_by=NAME, georef=ref.georef))
        if not out:
            raise MetadataError("no Georeference Annotation here targets an IIIF image service with 3 GCPs or more",
                                hint="Give the URL of an annotation (or annotation page) of an image service, or "
                                     "the IIIF manifest whose canvases carry the annotations.")
        return out
