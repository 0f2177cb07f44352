"""krpano panoramas and flat images: an XML (``tour.xml``, ``pano.xml``) → one image per face or scene.

Structure read (unknown elements are ignored; a ``<scene>`` has the same content model as the root)::

    <krpano> <include url=…/> <source_details subject=…/> <data>{"title": …}</data>
      <image tilesize=… baseindex=…(default 1)>
        <level tiledimagewidth=… tiledimageheight=…> <cube url=…/> … </level>
        <flat url=… multires="TS,WxH[xTS'],…"/>          (cube, cylinder, flat, left, right, front, …)
      <scene name=…> … </scene>

Tile URL placeholders: ``%h %x %u %c`` column, ``%v %y %r`` row (both ``+ baseindex``), ``%s`` cube side
(the shape becomes six faces: forward, back, left, right, up, down), ``%l`` level (``index + baseindex``),
``%%`` a percent sign; zeros after ``%`` pad (``%00x`` → 3 digits).

Images: every (scene, ``<image>``, shape, side) is one :class:`~dezoomify_nb.model.Image` whose levels
are that face's resolutions, in document order (``dz.open_all`` returns them all). Titles are
``"<title> <scene> <face>"`` with empty parts left out (the face only when the ``<image>`` has several).

Better than dezoomify-rs:

* ``<include url=…>`` is followed (krpano inserts the included file's content in place), recursively up
  to :data:`MAX_INCLUDE_DEPTH` levels and :data:`MAX_INCLUDES` files; relative URLs inside an included
  file (tile templates, nested includes) resolve against that file. An include that cannot be fetched is
  skipped with a warning (skins and plugins are often missing).
* krpano path placeholders ``%CURRENTXML%``, ``%FIRSTXML%``, ``%BASEDIR%``, ``%SWFPATH%``,
  ``%HTMLPATH%`` and ``%VIEWER%`` are replaced by the folder of the current / first XML (dezoomify-rs
  rejects the template).
* an HTML page that embeds the viewer (``embedpano({xml: "tour.xml", …})``) is followed to its XML;
* a tour whose images have no tiled levels (dezoomify-rs #146: "missing multires attribute") is reported
  with a clear message instead of an empty result;
* encrypted XML (``<encrypted>KENC…</encrypted>``, in the input, an embedded or an included file) is
  decrypted when its variant is solved publicly (:mod:`.krpano_crypt`), else refused naming the variant.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from urllib.parse import quote

from lxml import etree

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_SIDE, MAX_TILE_SIDE, Image, Level, is_url, resolve_relative
from . import krpano_crypt
from ._common import DocumentTooComplex, attr, load_json, local_name, parse_xml, referer, strip_bom
from .base import Context, Dezoomer

log = logging.getLogger(__name__)

MAX_INCLUDE_DEPTH = 8
MAX_INCLUDES = 64
MAX_IMAGES = 1024
SHAPES = ("cube", "cylinder", "flat", "left", "right", "front", "back", "up", "down", "sphere")
SIDES = ("forward", "back", "left", "right", "up", "down")
_PATH_VARS = re.compile(r"%(CURRENTXML|FIRSTXML|BASEDIR|SWFPATH|HTMLPATH|VIEWER|ROOT)%", re.I)
_EMBED_RE = re.compile(r"""embedpano\s*\(\s*\{[^}]*?\bxml\s*:\s*["']([^"']+)["']""", re.S)
#: characters left alone when percent-encoding a substituted tile path (spaces become %20)
_SAFE = "!#$%&'()*+,/:;=?@[]~"

#: a template part: ("lit", text) | ("x", pad) | ("y", pad) | ("s", pad) | ("l", pad)
Part = tuple[str, object]


def parse_template(template: str) -> tuple[Part, ...]:
    """Split a krpano URL template into parts; ValueError on an unknown ``%`` placeholder."""
    parts: list[Part] = []
    lit: list[str] = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c != "%":
            lit.append(c)
            i += 1
            continue
        i += 1
        pad = 1
        while i < n and template[i] == "0":
            pad += 1
            i += 1
        if i >= n:
            raise ValueError(f"Invalid templating syntax in {template!r}")
        v = template[i]
        i += 1
        if v == "%":
            lit.append("%")
            continue
        kind = {"h": "x", "x": "x", "u": "x", "c": "x", "v": "y", "y": "y", "r": "y", "s": "s", "l": "l"}.get(v)
        if kind is None:
            raise ValueError(f"Unknown template variable {v!r} in {template!r}")
        if lit:
            parts.append(("lit", "".join(lit)))
            lit = []
        parts.append((kind, pad))
    if lit:
        parts.append(("lit", "".join(lit)))
    return tuple(parts)


def _fix(parts: tuple[Part, ...], side: str, level: int) -> tuple[Part, ...]:
    """Replace ``%s`` and ``%l`` by their values, merging literals."""
    out: list[Part] = []
    for kind, value in parts:
        if kind == "s":
            kind, value = "lit", side[:1]
        elif kind == "l":
            kind, value = "lit", str(level).zfill(int(value))  # type: ignore[call-overload]
        if kind == "lit" and out and out[-1][0] == "lit":
            out[-1] = ("lit", str(out[-1][1]) + str(value))
        else:
            out.append((kind, value))
    return tuple(out)


def parse_multires(spec: str) -> list[tuple[int, int, int]]:
    """``"TS,WxH[xTS'],…"`` → ``[(w, h, tile_size), …]``; ValueError when malformed."""
    items = [s.strip() for s in spec.split(",")]
    if not items or not items[0].isdigit():
        raise ValueError("missing tile size")
    ts = int(items[0])
    out = []
    for item in items[1:]:
        dims = item.split("x")
        if not dims[0].isdigit():
            raise ValueError(f"invalid width in {item!r}")
        w = int(dims[0])
        h = int(dims[1]) if len(dims) > 1 and dims[1].isdigit() else w
        t = int(dims[2]) if len(dims) > 2 and dims[2].isdigit() else ts
        out.append((w, h, t))
    return out


@dataclass(frozen=True)
class KrpanoLevel(Level):
    """One resolution of one face: ``template`` parts (only ``lit``, ``x``, ``y`` left) + ``baseindex``."""

    template: tuple[Part, ...] = ()
    base_url: str = ""
    base_index: int = 1

    def tile_url(self, col: int, row: int) -> str:
        out = []
        for kind, value in self.template:
            if kind == "lit":
                out.append(str(value))
            else:
                n = self.base_index + (col if kind == "x" else row)
                out.append(str(n).zfill(int(value)))  # type: ignore[call-overload]
        path = "".join(out)
        if is_url(path) or is_url(self.base_url):
            path = quote(path, safe=_SAFE)
        return resolve_relative(self.base_url, path)


@dataclass
class _Face:
    scene: str
    shape: str
    side: str
    levels: list[KrpanoLevel]


def _title_of(root: etree._Element) -> str | None:
    for el in root.iter():
        name = local_name(el).lower()
        if name == "source_details" and attr(el, "subject") is not None:
            return (attr(el, "subject") or "").strip()
        if name == "data" and el.text:
            try:
                meta = load_json(el.text.encode())
            except DocumentTooComplex:
                continue
            if isinstance(meta, dict) and isinstance(meta.get("title"), str):
                return meta["title"].strip()
    return None


class _Walker:
    """Walks an XML tree (following includes through the context) and collects faces."""

    def __init__(self, ctx: Context, first_url: str) -> None:
        self.ctx = ctx
        self.first_url = first_url
        self.faces: list[_Face] = []
        self.includes = 0
        self.problems: list[str] = []
        self.titles: list[str] = []

    @staticmethod
    def folder(url: str) -> str:
        """The folder of ``url`` (a URL or a local path), without a trailing slash."""
        if is_url(url):
            return resolve_relative(url, "./").rstrip("/")
        return os.path.dirname(url) or "."

    def expand(self, text: str, url: str) -> str:
        def sub(m: re.Match[str]) -> str:
            which = url if m.group(1).upper() == "CURRENTXML" else self.first_url
            return self.folder(which)

        return _PATH_VARS.sub(sub, text)

    def document(self, root: etree._Element, url: str, scene: str, depth: int) -> None:
        title = _title_of(root)
        if title:
            self.titles.append(title)
        include_urls = [self.expand(attr(el, "url") or "", url) for el in root.iter()
                        if local_name(el).lower() == "include" and attr(el, "url")]
        wanted = [resolve_relative(url, u) for u in include_urls]
        if wanted and depth < MAX_INCLUDE_DEPTH:
            budget = MAX_INCLUDES - self.includes
            self.ctx.prefetch(wanted[:max(budget, 0)])
        self.children(root, url, scene, depth)

    def children(self, el: etree._Element, url: str, scene: str, depth: int) -> None:
        for child in el:
            name = local_name(child).lower()
            if name == "scene":
                sub = " ".join(p for p in (scene, attr(child, "name") or "") if p)
                self.children(child, url, sub, depth)
            elif name == "image":
                self.image(child, url, scene)
            elif name == "include" and attr(child, "url"):
                self.include(resolve_relative(url, self.expand(attr(child, "url") or "", url)), scene, depth)

    def include(self, url: str, scene: str, depth: int) -> None:
        if depth + 1 > MAX_INCLUDE_DEPTH or self.includes >= MAX_INCLUDES:
            log.warning("krpano: not following include %s (more than %d levels or %d files)",
                        url, MAX_INCLUDE_DEPTH, MAX_INCLUDES)
            return
        self.includes += 1
        data = self.ctx.try_get(url)
        if data is None:
            log.info("krpano: could not fetch the included file %s; skipping it", url)
            return
        try:
            data = krpano_crypt.maybe_decrypt(data)
        except MetadataError as exc:
            self.problems.append(f"{url}: {exc}")
            log.warning("krpano: skipping the included file %s: %s", url, exc)
            return
        root = parse_xml(data)
        if root is None or local_name(root).lower() != "krpano":
            log.warning("krpano: the included file %s is not krpano XML; skipping it", url)
            return
        self.document(root, url, scene, depth + 1)

    def image(self, el: etree._Element, url: str, scene: str) -> None:
        ts_attr = (attr(el, "tilesize") or "").strip()
        tile_size = int(ts_attr) if ts_attr.isdigit() else None
        bi = (attr(el, "baseindex") or "").strip()
        base_index = int(bi) if bi.isdigit() and len(bi) < 9 else 1
        for child in el:
            name = local_name(child).lower()
            if name == "level":
                try:
                    size = (int(attr(child, "tiledimagewidth") or ""), int(attr(child, "tiledimageheight") or ""))
                except ValueError:
                    self.problems.append("a <level> without tiledimagewidth/tiledimageheight")
                    continue
                for shape in child:
                    if local_name(shape).lower() in SHAPES:
                        self.shape(shape, url, scene, size, tile_size, base_index)
            elif name in SHAPES:
                self.shape(child, url, scene, None, tile_size, base_index)

    def shape(self, el: etree._Element, url: str, scene: str, size: tuple[int, int] | None,
              tile_size: int | None, base_index: int) -> None:
        shape = local_name(el).lower()
        raw = attr(el, "url")
        if not raw:
            return
        try:
            parts = parse_template(self.expand(raw, url))
        except ValueError as exc:
            self.problems.append(str(exc))
            log.warning("krpano: skipping %s: %s", shape, exc)
            return
        multires = attr(el, "multires")
        specs: list[tuple[int, int, int | None]]
        if multires and multires.strip().lower() not in ("true", "false"):
            try:
                specs = list(parse_multires(multires))
            except ValueError as exc:
                self.problems.append(f"bad multires {multires!r}: {exc}")
                return
        elif size is not None:
            specs = [(size[0], size[1], None)]
        else:
            self.problems.append(f"<{shape} url={raw!r}> has no multires attribute (not a tiled image)")
            return
        sides = SIDES if any(k == "s" for k, _ in parts) else ("",)
        for side in sides:
            face = self.face(scene, shape, side)
            for index, (w, h, ts) in enumerate(specs):
                if any(lv.size == (w, h) for lv in face.levels):
                    continue  # the same face described twice (e.g. per device): keep the first
                t = ts or tile_size
                if not t or not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE and 0 < t <= MAX_TILE_SIDE):
                    self.problems.append(f"{shape}: level {w}x{h} without a valid tile size")
                    continue
                template = _fix(parts, side, index + base_index)
                name = " ".join(p for p in ("Krpano", shape.capitalize(), side, scene) if p)
                lv = KrpanoLevel(w, h, t, t, name=name, template=template, base_url=url, base_index=base_index)
                face.levels.append(KrpanoLevel(w, h, t, t, headers=referer(lv.tile_url(0, 0)), name=name,
                                               template=template, base_url=url, base_index=base_index))

    def face(self, scene: str, shape: str, side: str) -> _Face:
        for f in self.faces:
            if (f.scene, f.shape, f.side) == (scene, shape, side):
                return f
        if len(self.faces) >= MAX_IMAGES:
            raise MetadataError(f"more than {MAX_IMAGES} krpano images")
        self.faces.append(_Face(scene, shape, side, []))
        return self.faces[-1]


def _xml_url(ctx: Context) -> tuple[str, etree._Element]:
    """The krpano XML URL and its root: the input itself, or the XML an HTML page embeds."""
    data = krpano_crypt.maybe_decrypt(strip_bom(ctx.get()))
    root = parse_xml(data)
    if root is not None and local_name(root).lower() == "krpano":
        return ctx.url, root
    m = _EMBED_RE.search(data[:2_000_000].decode("utf-8", "replace"))
    if m is None:
        raise WrongDezoomer("not a krpano XML file")
    url = resolve_relative(ctx.url, m.group(1))
    inner = krpano_crypt.maybe_decrypt(strip_bom(ctx.get(url)))
    root = parse_xml(inner)
    if root is None or local_name(root).lower() != "krpano":
        raise MetadataError(f"the page embeds {url}, which is not krpano XML")
    return url, root


class KrpanoDezoomer(Dezoomer):
    name = "krpano"
    description = "krpano panoramas and images (tour.xml: cube faces, scenes, multires levels, includes)"

    def images(self, ctx: Context) -> list[Image]:
        url, root = _xml_url(ctx)
        walker = _Walker(ctx, url)
        walker.document(root, url, "", 0)
        faces = [f for f in walker.faces if f.levels]
        if not faces:
            detail = "; ".join(dict.fromkeys(walker.problems)) or "no <image> with tiled levels"
            raise MetadataError(f"krpano XML without any tiled image: {detail}",
                                hint="The tour may show a single non-tiled picture (download its url directly), "
                                     "or keep its images in another XML file.")
        title = walker.titles[0] if walker.titles else ""
        per_image = {}
        for f in faces:
            per_image[f.scene] = per_image.get(f.scene, 0) + 1
        out = []
        for f in faces:
            face = " ".join(p for p in (f.shape.capitalize(), f.side) if p) if per_image[f.scene] > 1 else ""
            full = " ".join(p for p in (title, f.scene, face) if p) or None
            levels = tuple(f.levels[:MAX_LEVELS])
            out.append(Image(levels=levels, title=full, dezoomer=self.name, url=url))
        return out
