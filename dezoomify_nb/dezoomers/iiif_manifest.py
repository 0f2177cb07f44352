"""IIIF Presentation API 2 and 3 manifests (and collections): one image per painted canvas.

A manifest lists canvases; each canvas paints one or more images, usually through an IIIF Image API
service. Each such image becomes an :class:`~dezoomify_nb.model.ImageRef` to the service's ``info.json``
(resolved later by the ``iiif`` dezoomer, only when the image is used), so opening a manifest of 500
canvases fetches the manifest alone. A painted image without a service (a plain JPEG) becomes a one-level
:class:`~dezoomify_nb.model.Image` whose single tile is that URL.

Layouts read (``@id``/``id`` and ``@type``/``type`` are both accepted everywhere):

* v2: ``sequences[0].canvases[].images[].resource`` (``oa:Choice`` → its ``default``), ``resource.service``
  an object or a list; only the first (default) sequence, every one with ``all_sequences``
  (``dz.open(..., all_sequences=True)``, ``--all-sequences``);
* v3: ``items[] (Canvas) .items[] (AnnotationPage) .items[] (Annotation) .body`` (``Choice`` → its first
  item), ``body.service`` a list or an object;
* a ``SpecificResource`` (v3 ``source``, v2 ``full`` of an ``oa:SpecificResource``) is its underlying
  image, with the ``region`` of its ``ImageApiSelector`` or ``FragmentSelector`` (``xywh=``, pixels or
  percent) as :attr:`Image.region <dezoomify_nb.model.Image.region>` (saved by default) and its rotation
  noted (:attr:`~dezoomify_nb.model.Image.rotation`; not applied to the pixels);
* collections: v2 ``manifests``/``collections``/``members``, v3 ``items`` of type Manifest or Collection.
  Their manifests are fetched now (all of one depth at once), at most :data:`MAX_MANIFESTS` of them and
  :data:`MAX_DEPTH` levels deep; a manifest that cannot be fetched is skipped with a warning.

Service preference (dezoomify-rs): ``ImageService3``, then ``ImageService2``, then any type containing
``ImageService``, then the first with an id. Labels are strings, language maps (``en`` first, then
``none``, then the first language) or v2 lists of ``{"@value", "@language"}``. The title of an image is
the metadata ``Title`` (or the manifest label), then `` - `` and the canvas label unless already in it.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Iterator
from typing import Any

from ..errors import FetchError, MetadataError, WrongDezoomer
from ..model import MAX_SIDE, MAX_TILE_SIDE, Image, ImageRef, TemplateLevel, resolve_relative
from ._common import load_json, referer
from .base import Context, Dezoomer
from .iiif_georef import canvas_georefs, matching, scaled

log = logging.getLogger(__name__)

#: caps against hostile or runaway manifests
MAX_IMAGES = 10_000
MAX_MANIFESTS = 256
MAX_DEPTH = 4

_MANIFEST_TYPES = {"manifest", "sc:manifest"}
_COLLECTION_TYPES = {"collection", "sc:collection"}
_IMAGE_EXT_RE = re.compile(r"\.(?:jpe?g|png|gif|webp|tiff?|bmp|avif|jp2|xml|dzi|txt|urls)(?:[?#].*)?$", re.I)
_TAG_RE = re.compile(r"<[^>]*>")


# --- small JSON helpers -----------------------------------------------------------------------------
def _id(obj: Any) -> str:
    if isinstance(obj, str):
        return obj.strip()
    if isinstance(obj, dict):
        v = obj.get("id", obj.get("@id"))
        if isinstance(v, str):
            return v.strip()
    return ""


def _type(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    v = obj.get("type", obj.get("@type"))
    if isinstance(v, list):
        v = next((x for x in v if isinstance(x, str)), "")
    return v.strip() if isinstance(v, str) else ""


def _list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _dicts(v: Any) -> Iterator[dict[str, Any]]:
    return (x for x in _list(v) if isinstance(x, dict))


def _size(obj: Any) -> tuple[int, int] | None:
    """``(width, height)`` of a JSON object when both are positive integers (numeric strings accepted)."""
    if not isinstance(obj, dict):
        return None
    out = []
    for key in ("width", "height"):
        v = obj.get(key)
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            return None
        out.append(v)
    return out[0], out[1]


def _clean(text: str) -> str:
    """A label or metadata value as plain text: tags dropped, entities decoded, spaces collapsed."""
    if "<" in text:
        text = _TAG_RE.sub(" ", text)
    return " ".join(html.unescape(text).split())


def label_text(v: Any, _depth: int = 0) -> str | None:
    """The text of a IIIF label: a string, a v3 language map or a v2 value (list, ``@value`` objects)."""
    if _depth > 4:  # no real label nests deeper; a hostile one must not exhaust the stack
        return None
    if isinstance(v, str):
        return _clean(v) or None
    if isinstance(v, list):
        texts = [(x.get("@language", "") if isinstance(x, dict) else "", label_text(x, _depth + 1)) for x in v]
        texts = [(lang, t) for lang, t in texts if t]
        for lang, t in texts:
            if isinstance(lang, str) and lang.lower().split("-")[0] == "en":
                return t
        return texts[0][1] if texts else None
    if isinstance(v, dict):
        if "@value" in v:
            return label_text(v["@value"], _depth + 1)
        keys = list(v)
        en = [k for k in keys if isinstance(k, str) and k.lower().split("-")[0] == "en"]
        for key in en + [k for k in keys if k == "none"] + keys:
            values = v[key]
            text = label_text(values[0] if isinstance(values, list) and values else values, _depth + 1)
            if text:
                return text
    return None


def metadata_title(obj: dict[str, Any]) -> str | None:
    """The value of the first ``metadata`` entry labelled ``Title`` (in any case)."""
    for entry in _dicts(obj.get("metadata")):
        label = label_text(entry.get("label"))
        if label and label.strip().casefold() == "title":
            value = label_text(entry.get("value"))
            if value:
                return value
    return None


def image_title(base: str | None, canvas_label: str | None) -> str | None:
    """``base - canvas label``, leaving out a canvas label the base already ends with (``Book p. 1``,
    ``p. 1``). A label found elsewhere in the base is kept: the Cookbook's "Laocöon, geolocated sculpture
    and painting." paints two canvases, "Sculpture" and "Painting", which must keep their names."""
    if not base:
        return canvas_label
    if not canvas_label:
        return base
    b, c = base.casefold(), canvas_label.casefold()
    if b.endswith(c) and (len(b) == len(c) or not b[-len(c) - 1].isalnum()):
        return base
    return f"{base} - {canvas_label}"


def pick_service(services: Any) -> dict[str, Any] | None:
    """The preferred Image API service of a body (see the module docstring)."""
    found = [s if isinstance(s, dict) else {"id": s} for s in _list(services) if isinstance(s, (dict, str))]
    found = [s for s in found if _id(s)]
    for test in (lambda t: t == "ImageService3", lambda t: t == "ImageService2", lambda t: "ImageService" in t):
        for s in found:
            if test(_type(s)):
                return s
    # a v2 service has no type but a context or profile naming the Image API
    for s in found:
        marks = json.dumps([s.get("@context"), s.get("profile")])[:2000]
        if "iiif.io/api/image" in marks or "library.stanford.edu/iiif/image-api" in marks:
            return s
    return found[0] if found else None


def info_json(service_id: str, base: str) -> str:
    url = resolve_relative(base, service_id)
    if url.endswith("info.json"):
        return url
    return url.rstrip("/") + "/info.json"


# --- walking a manifest -----------------------------------------------------------------------------
def _specific(resource: Any) -> tuple[Any, list[Any]]:
    """``(image resource, selectors)``: a SpecificResource (v3 ``source``, v2 ``full``) opened."""
    if _type(resource) in ("SpecificResource", "oa:SpecificResource") and isinstance(resource, dict):
        inner = resource.get("source", resource.get("full"))
        return inner, list(_dicts(resource.get("selector")))
    return resource, []


def _painted(canvas: dict[str, Any]) -> Iterator[tuple[dict[str, Any], list[Any]]]:
    """``(image resource, selectors)`` painted on a canvas, v2 or v3."""
    for anno in _dicts(canvas.get("images")):  # v2
        resource, selectors = _specific(anno.get("resource"))
        if _type(resource) == "oa:Choice":
            resource = resource.get("default") or next(iter(_list(resource.get("item"))), None)
            resource, selectors = _specific(resource)
        if isinstance(resource, dict):
            yield resource, selectors
    for page in _dicts(canvas.get("items")):  # v3
        for anno in _dicts(page.get("items")):
            motivation = " ".join(m for m in _list(anno.get("motivation")) if isinstance(m, str))
            if motivation and "painting" not in motivation:
                continue
            for body in _dicts(anno.get("body")):
                if _type(body) == "Choice":
                    body = next(_dicts(body.get("items")), None)
                body, selectors = _specific(body)
                if isinstance(body, dict):
                    yield body, selectors


_XYWH_RE = re.compile(r"xywh=(?:(pixel|percent):)?([\d.]+),([\d.]+),([\d.]+),([\d.]+)$")
_REGION_RE = re.compile(r"(pct:)?([\d.]+),([\d.]+),([\d.]+),([\d.]+)$")


def _box(pct: bool, values: tuple[str, ...], size: tuple[int, int] | None) -> tuple[int, int, int, int] | None:
    try:
        x, y, w, h = (float(v) for v in values)
    except ValueError:  # "1.2.3"
        return None
    if not all(0 <= v <= MAX_SIDE for v in (x, y, w, h)):  # inf, 1e400, …: not a region of any image
        return None
    if pct:
        if size is None:
            return None
        x, w = x * size[0] / 100, w * size[0] / 100
        y, h = y * size[1] / 100, h * size[1] / 100
    box = (round(x), round(y), round(w), round(h))
    return box if box[2] > 0 and box[3] > 0 else None


def selection(selectors: list[Any], size: tuple[int, int] | None, where: str) -> tuple[tuple[int, int, int, int] | None, float]:
    """``(region, rotation)`` of a SpecificResource's selectors: an ``ImageApiSelector`` (``region``,
    ``rotation``) or a ``FragmentSelector`` ``xywh=`` (pixels or percent of ``size``). Others are ignored
    (logged)."""
    region: tuple[int, int, int, int] | None = None
    rotation = 0.0
    for sel in selectors:
        kind = _type(sel).split(":")[-1]
        if kind == "ImageApiSelector":
            m = _REGION_RE.match(str(sel.get("region", "full")).strip())
            if m:
                region = _box(bool(m.group(1)), m.groups()[1:], size) or region
            rot = str(sel.get("rotation", "0")).strip()
            try:
                rotation = float(rot.lstrip("!")) % 360
            except ValueError:
                rotation = math.nan
            if not math.isfinite(rotation):
                log.info("%s: rotation %r not understood; ignored", where, rot[:40])
                rotation = 0.0
            if rot.startswith("!"):
                log.info("%s: a mirrored image (rotation %r) is not mirrored here", where, rot)
        elif kind == "FragmentSelector":
            m = _XYWH_RE.match(str(sel.get("value", "")).strip())
            if m:
                region = _box(m.group(1) == "percent", m.groups()[1:], size) or region
            else:
                log.info("%s: fragment selector %r not understood; ignored", where, sel.get("value"))
        else:
            log.info("%s: selector %r not understood; ignored", where, kind or sel)
    return region, rotation


def _canvases(manifest: dict[str, Any], all_sequences: bool = False) -> Iterator[dict[str, Any]]:
    """The canvases of a manifest: v2 the first (default) sequence's (all of them with ``all_sequences``),
    v3 its items."""
    sequences = list(_dicts(manifest.get("sequences")))
    for seq in sequences if all_sequences else sequences[:1]:
        yield from _dicts(seq.get("canvases"))
    for item in _dicts(manifest.get("items")):
        if _type(item) in ("", "Canvas", "sc:Canvas"):
            yield item


def direct_image(url: str, size: tuple[int, int], title: str | None, dezoomer: str,
                 region: tuple[int, int, int, int] | None = None, rotation: float = 0) -> Image:
    """A one-level image whose single tile is the image file at ``url``."""
    w, h = size
    if w > MAX_TILE_SIDE or h > MAX_TILE_SIDE:
        raise MetadataError(f"the image {url} ({w}x{h}) has no image service and is too large for one tile")
    template = url.replace("{", "{{").replace("}", "}}")
    level = TemplateLevel(w, h, w, h, headers=referer(url), name="image file", template=template)
    return Image((level,), title=title, dezoomer=dezoomer, url=url, region=region, rotation=rotation)


def manifest_images(manifest: dict[str, Any], url: str, dezoomer: str, limit: int,
                    all_sequences: bool = False) -> list[Image | ImageRef]:
    """One entry per painted image of ``manifest`` (fetched from ``url``), at most ``limit``.

    A painted SpecificResource is its underlying image with the region (and rotation) its selector gives;
    v2: the first sequence only, unless ``all_sequences``."""
    base = metadata_title(manifest) or label_text(manifest.get("label"))
    out: list[Image | ImageRef] = []
    for index, canvas in enumerate(_canvases(manifest, all_sequences)):
        canvas_label = label_text(canvas.get("label"))
        title = image_title(base, canvas_label) or f"Image {index + 1}"
        georefs = canvas_georefs(canvas) if "annotations" in canvas else []  # IIIF georeferencing, inline
        for body, selectors in _painted(canvas):
            if len(out) >= limit:
                log.warning("%s: more than %d images; the rest are ignored", url, MAX_IMAGES)
                return out
            size = _size(body) or (None if selectors else _size(canvas))
            region, rotation = selection(selectors, size, url)
            service = pick_service(body.get("service", body.get("services")))
            if service is not None:
                hint = (region[2], region[3]) if region else (_size(service) or size or _size(canvas))
                geo = matching(georefs, _id(canvas), _id(service)) if georefs and region is None else None
                if geo is not None:
                    hint = hint or ((geo.width, geo.height) if geo.width and geo.height else None)
                out.append(ImageRef(info_json(_id(service), url), title, "iiif", *(hint or (None, None)),
                                    found_by=dezoomer, region=region, rotation=rotation,
                                    georef=scaled(geo, *hint) if geo and hint else geo.georef if geo else None))
                continue
            body_type = _type(body)
            image_url = _id(body)
            if not image_url or not (body_type == "" or body_type.endswith("Image")):
                continue
            image_url = resolve_relative(url, image_url)
            size = size or _size(canvas)
            if size is None:
                log.warning("%s: the image %s has no size and no image service; skipped", url, image_url)
                continue
            try:
                out.append(direct_image(image_url, size, title, dezoomer, region, rotation))
            except MetadataError as exc:
                log.warning("%s: %s; skipped", url, exc)
    return out


def _kind(obj: Any) -> str:
    """``"manifest"``, ``"collection"`` or ``""``."""
    if not isinstance(obj, dict):
        return ""
    t = _type(obj).casefold()
    if t in _MANIFEST_TYPES or (not t and "sequences" in obj):
        return "manifest"
    if t in _COLLECTION_TYPES or (not t and ("manifests" in obj or "collections" in obj)):
        return "collection"
    return ""


def _children(collection: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("collections", "manifests", "members", "items"):
        for child in _dicts(collection.get(key)):
            if _kind(child) or key in ("manifests", "collections"):
                yield child


def _inline(child: dict[str, Any]) -> bool:
    """Does this collection entry embed its content (rather than only point to it)?"""
    if _kind(child) == "collection":
        return any(child.get(k) for k in ("manifests", "collections", "members", "items"))
    return bool(child.get("sequences") or child.get("items"))


def _parse(data: bytes) -> Any:
    return load_json(data)


class IIIFManifestDezoomer(Dezoomer):
    name = "iiif_manifest"
    description = "IIIF Presentation API 2/3 manifests and collections (one image per canvas)"
    #: a source that may hold several images: ``dz.open`` gives an ImageCollection
    multi_image = True

    def images(self, ctx: Context) -> list[Image | ImageRef]:
        url = ctx.url
        if "{{" in url:
            raise WrongDezoomer("a URL template, not an IIIF manifest")
        if _IMAGE_EXT_RE.search(url):
            raise WrongDezoomer("not a JSON document")
        doc = _parse(ctx.get())
        kind = _kind(doc)
        if not kind:
            raise WrongDezoomer("not an IIIF presentation manifest or collection")
        out: list[Image | ImageRef] = []
        failed: list[FetchError] = []
        if kind == "manifest":
            out = manifest_images(doc, url, self.name, MAX_IMAGES, bool(ctx.options.get("all_sequences")))
        else:
            self._collection(ctx, [(url, doc)], out, failed)
        if not out and failed:  # e.g. manifests on the local disk, refused: say so, with that hint
            err = MetadataError(f"the IIIF collection at {url} paints no image: none of its manifests could be "
                                f"fetched (first: {failed[0]})", hint=failed[0].hint or None)
            err.explains_input = True  # type: ignore[attr-defined]
            raise err
        if not out:
            raise MetadataError(f"the IIIF {kind} at {url} paints no image",
                                hint="Check that the URL is the manifest of the object you want.")
        return out

    def _collection(self, ctx: Context, level: list[tuple[str, Any]], out: list[Image | ImageRef],
                    failed: list[FetchError]) -> None:
        """Walk collections breadth first, fetching each depth's manifests in one round."""
        seen = {u for u, _ in level}
        fetched = 0
        warned: set[str] = set()

        def warn_once(message: str, *args: object) -> None:
            if message not in warned:
                warned.add(message)
                log.warning(message, *args)
        for depth in range(MAX_DEPTH + 1):
            children: list[tuple[str, Any]] = []
            wanted: list[str] = []
            for parent_url, coll in level:
                for child in _children(coll):
                    child_url = resolve_relative(parent_url, _id(child)) if _id(child) else parent_url
                    if _kind(child) == "collection" and depth == MAX_DEPTH:
                        warn_once("IIIF collections nested more than %d deep are ignored", MAX_DEPTH)
                    elif _inline(child):
                        children.append((child_url, child))
                    elif not _id(child) or child_url in seen:
                        continue
                    elif fetched + len(wanted) >= MAX_MANIFESTS:
                        warn_once("only the first %d manifests of the collection are read", MAX_MANIFESTS)
                    else:
                        seen.add(child_url)
                        wanted.append(child_url)
                        children.append((child_url, None))
            ctx.prefetch(wanted)
            fetched += len(wanted)
            level = []
            for child_url, doc in children:
                if doc is None:
                    try:
                        doc = _parse(ctx.get(child_url))
                    except FetchError as exc:
                        failed.append(exc)
                        log.warning("%s skipped: %s", child_url, exc)
                        continue
                kind = _kind(doc)
                if kind == "manifest":
                    out.extend(manifest_images(doc, child_url, self.name, MAX_IMAGES - len(out),
                                               bool(ctx.options.get("all_sequences"))))
                elif kind == "collection":
                    level.append((child_url, doc))
                else:
                    log.warning("%s is not an IIIF manifest; skipped", child_url)
                if len(out) >= MAX_IMAGES:
                    return
            if not level:
                return
