"""Georeferenced outputs: an image from a map source (:attr:`~dezoomify_nb.model.Image.georef`) written so
GIS software places it.

* :func:`georef_for` — the :class:`~dezoomify_nb.model.GeoRef` of a saved level (and region).
* :func:`geotiff_tags` — GeoTIFF 1.1 tags (tifffile ``extratags``) of the main image: the geotransform as
  ModelPixelScale + ModelTiepoint (north-up) or ModelTransformation (rotated or south-up), or the ground
  control points as a list of ModelTiepoints (no scale: GDAL reads them as GCPs and ``gdalwarp`` warps with
  them); the GeoKeyDirectory with the CRS.
* :func:`write_sidecars` — beside a PNG, JPEG… a world file (``.pgw``, ``.jgw``…: the *centre* of the top-left
  pixel, as the format wants) and a GDAL PAM ``.aux.xml`` with the CRS (WKT), the geotransform or the GCPs.

CRSs (``GeoRef.crs``): an EPSG code in any usual spelling (``EPSG:3857``, ``urn:ogc:def:crs:EPSG::3857``,
``http://www.opengis.net/def/crs/EPSG/0/3857``; Web Mercator's aliases 900913, 3785, 102100, 102113 are
3857; OGC CRS84 is 4326) or WKT. An EPSG code becomes GeographicTypeGeoKey when it names a geographic 2D
CRS (:data:`GEOGRAPHIC_2D`: every such code of the EPSG dataset v11.022, as PROJ 9.5.1 lists them),
ProjectedCSTypeGeoKey otherwise. A WKT whose top-level identifier is an EPSG code is written as that code;
any other WKT as a user-defined model (GTModelTypeGeoKey 32767) with the WKT in PCSCitationGeoKey as an
``ESRI PE String``, which is how GDAL (up to ~2,400 characters) and ESRI read a CRS that has no code.

Geotransforms are GDAL's ``(c, a, b, f, d, e)`` of pixel *corners*: ``X = c + a·col + b·row``,
``Y = f + d·col + e·row``, X easting or **longitude** (GIS axis order, also for EPSG:4326).
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from ..model import GeoRef, Image
from .atomic import atomic_output

log = logging.getLogger(__name__)

#: EPSG codes of geographic 2D CRSs (ranges), from the EPSG dataset v11.022 as listed by PROJ 9.5.1
#: (``pyproj.database.query_crs_info(auth_name="EPSG", pj_types=[PJType.GEOGRAPHIC_2D_CRS])``)
_GEOGRAPHIC_2D_RANGES = (
    "3819 3821 3824 3889 3906 4023 4046 4075 4081 4120-4124 4127-4139 4141-4171 4173-4176 4178-4184 "
    "4188-4216 4218-4225 4227 4229-4232 4236-4259 4261-4263 4265-4267 4269-4279 4281-4286 4288-4289 "
    "4292-4293 4295 4297-4304 4306-4316 4318-4319 4322 4324 4326 4463 4470 4475 4483 4490 4555 4558 "
    "4600-4630 4632-4633 4636-4639 4641-4644 4646 4657-4680 4682-4684 4686-4730 4732-4765 4801-4807 "
    "4809-4811 4813-4818 4820-4821 4823-4824 4901 4903-4904 5013 5132 5228-5229 5233 5246 5252 5264 5324 "
    "5340 5354 5360 5365 5371 5373 5381 5393 5451 5464 5467 5489 5524 5527 5546 5561 5593 5681 5886 6135 "
    "6207 6311 6318 6322 6325 6365 6668 6706 6783 6881-6883 6892 6894 6983 6990 7035 7037 7039 7041 7073 "
    "7084 7086 7133 7136 7139 7373 7683 7686 7798 7844 7881 7886 8042-8043 8086 8232 8237 8240 8246 8249 "
    "8252 8255 8351 8427-8428 8431 8545 8685 8694 8699 8818 8860 8888 8900 8902 8907 8949 8972-9000 9003 "
    "9006 9009 9012 9014 9017 9019 9053-9057 9059-9069 9072 9075 9140 9148 9153 9248 9251 9253 9294 9299 "
    "9309 9333 9364 9372 9380 9384 9403 9453 9470 9474-9475 9547 9696 9702 9739 9755 9758 9763 9777 9779 "
    "9782 9784 9866 9871 9939 9964 9969 9974 9990 10158 10175 10178 10185 10191 10196 10204 10209 10214 "
    "10219 10224 10229 10237 10249 10252 10256 10260 10265 10268 10272 10277 10284 10299 10305 10307 "
    "10310 10312 10328 10345-10346 10414 10468 10475 10571 10606 10623 10628 10671 10673 20033 20041 "
    "20046 ")


def _ranges(text: str) -> frozenset[int]:
    codes: set[int] = set()
    for part in text.split():
        lo, _, hi = part.partition("-")
        codes.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(codes)


GEOGRAPHIC_2D = _ranges("".join(_GEOGRAPHIC_2D_RANGES))
#: other spellings of EPSG:3857 (Web Mercator)
WEB_MERCATOR_ALIASES = frozenset({900913, 3785, 102100, 102113, 41001})
#: WKT 1 (GDAL flavour) of the two CRSs nearly every tile service uses, for when pyproj is not installed
BUILTIN_WKT = {
    4326: 'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
          'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],'
          'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4326"]]',
    3857: 'PROJCS["WGS 84 / Pseudo-Mercator",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,'
          '298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,'
          'AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],'
          'AUTHORITY["EPSG","4326"]],PROJECTION["Mercator_1SP"],PARAMETER["central_meridian",0],'
          'PARAMETER["scale_factor",1],PARAMETER["false_easting",0],PARAMETER["false_northing",0],'
          'UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH],'
          'EXTENSION["PROJ4","+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 '
          '+units=m +nadgrids=@null +wktext +no_defs"],AUTHORITY["EPSG","3857"]]',
}
#: the longest WKT GDAL reads back from a GeoTIFF citation (its buffer is 2,400 bytes)
MAX_CITATION_WKT = 2300
MAX_WKT = 65536

_EPSG_RE = re.compile(r"\b(epsg|esri)\b(?:[:/][\d.]*)?[:/]+(\d{1,9})\s*$", re.I)
_CRS84_RE = re.compile(r"crs:?84$|ogc:[\d.]*:?crs84$|/ogc/[\d.]+/crs84$", re.I)
_WKT_RE = re.compile(r"\s*([A-Za-z_]+)\s*[\[(]")
_ID_RE = re.compile(r"\b(?:AUTHORITY|ID)\s*[\[(]\s*\"EPSG\"\s*,\s*\"?(\d{1,9})\"?", re.I)
_GEOG_WKT = frozenset({"GEOGCS", "GEOGCRS", "GEOGRAPHICCRS", "GEODCRS", "GEODETICCRS"})
_PROJ_WKT = frozenset({"PROJCS", "PROJCRS", "PROJECTEDCRS"})


@dataclass(frozen=True)
class CRSInfo:
    """What the writers need to know of a CRS: its EPSG code (None without one), whether it is geographic
    (longitude/latitude), and the WKT it was given as (None when given as a code)."""

    epsg: int | None
    geographic: bool
    wkt: str | None = None


def _top_level_epsg(wkt: str) -> int | None:
    """The EPSG code of the WKT's outermost object (its last AUTHORITY/ID at depth 1), else None."""
    depth, in_str, found = 0, False, None
    matches = {m.start(): int(m.group(1)) for m in _ID_RE.finditer(wkt)}
    for i, ch in enumerate(wkt):
        if ch == '"':
            in_str = not in_str
        elif in_str:
            continue
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif depth == 1 and i in matches:
            found = matches[i]
    return found


def crs_info(crs: str) -> CRSInfo:
    """``crs`` (an EPSG code in any usual spelling, or WKT) as a :class:`CRSInfo`."""
    s = (crs or "").strip()
    if _CRS84_RE.search(s):
        return CRSInfo(4326, True)
    m = _EPSG_RE.search(s) if len(s) < 200 else None
    if m and (m.group(1).lower() == "epsg" or int(m.group(2)) in WEB_MERCATOR_ALIASES):
        code = int(m.group(2))
        code = 3857 if code in WEB_MERCATOR_ALIASES else code
        if code <= 32766:
            return CRSInfo(code, code in GEOGRAPHIC_2D)
    kw = _WKT_RE.match(s[:100])
    if kw and len(s) <= MAX_WKT:
        word = kw.group(1).upper()
        code = _top_level_epsg(s)
        if code is not None and code > 32766:
            code = 3857 if code in WEB_MERCATOR_ALIASES else None
        geographic = word in _GEOG_WKT or (code in GEOGRAPHIC_2D and word not in _PROJ_WKT)
        return CRSInfo(code, geographic, s)
    wkt = _pyproj_wkt(s)
    if wkt is not None:
        return crs_info(wkt)
    log.warning("unknown CRS %r: the output is written without one", s[:100])
    return CRSInfo(None, False)


@functools.lru_cache(maxsize=64)
def _pyproj_wkt(crs: str, flavour: str = "WKT1_GDAL") -> str | None:
    """``crs`` as WKT through pyproj when it is installed (it is optional), else None."""
    try:
        import pyproj
    except ImportError:
        return None
    try:
        return pyproj.CRS.from_user_input(crs).to_wkt(flavour)
    except Exception:  # pyproj.exceptions.CRSError and friends: not a CRS pyproj knows
        return None


def crs_wkt(info: CRSInfo) -> str | None:
    """WKT of the CRS for a ``.aux.xml``: as given, else pyproj's, else built in (4326, 3857), else
    ``EPSG:<code>`` (which GDAL also reads there)."""
    if info.wkt:
        return info.wkt
    if info.epsg is None:
        return None
    return BUILTIN_WKT.get(info.epsg) or _pyproj_wkt(f"EPSG:{info.epsg}") or f"EPSG:{info.epsg}"


# --- georeference of an output ------------------------------------------------------------------------
def georef_for(image: Image, level: int, box: tuple[int, int, int, int] | None = None) -> GeoRef | None:
    """``image``'s georeference for its level ``level``, cut to ``box`` (``(x, y, w, h)`` in that level's
    pixels): pixel sizes scaled, the origin moved to the box's corner; None when the image has none."""
    if image.georef is None:
        return None
    ref = image.georef.for_level(image.levels[level], image.levels[0])
    x, y = (box[0], box[1]) if box is not None else (0, 0)
    if not (x or y):
        return ref
    transform = None
    if ref.transform is not None:
        c, a, b, f, d, e = ref.transform
        transform = (c + a * x + b * y, a, b, f + d * x + e * y, d, e)
    gcps = tuple((col - x, row - y, gx, gy) for col, row, gx, gy in ref.gcps)
    return replace(ref, transform=transform, gcps=gcps)


def georef_label(georef: GeoRef) -> str:
    """``"EPSG:3857"``, ``"5 GCPs in EPSG:4326"``, ``"a WKT CRS"``: what a user is told of a georeference."""
    info = crs_info(georef.crs)
    crs = f"EPSG:{info.epsg}" if info.epsg is not None else "a WKT CRS" if info.wkt else "no known CRS"
    if georef.transform is None:
        return f"{len(georef.gcps)} GCPs in {crs}" + (f" ({georef.warp})" if georef.warp else "")
    return crs


def warp_option(georef: GeoRef) -> str:
    """The gdalwarp option for the GCPs' transformation: ``-order N`` (polynomial), ``-tps`` (thin plate spline)."""
    if georef.warp == "thinPlateSpline":
        return "-tps"
    return f"-order {georef.warp[-1]}" if georef.warp.startswith("polynomial") else "-order 1"


def _finite(values) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def usable(georef: GeoRef | None) -> bool:
    """Whether ``georef`` can be written: a finite, invertible transform, or at least 3 finite GCPs
    (a first-order polynomial needs 3)."""
    if georef is None:
        return False
    if georef.transform is not None:
        c, a, b, f, d, e = georef.transform
        return _finite(georef.transform) and abs(a * e - b * d) > 0
    return len(georef.gcps) >= 3 and all(_finite(g) for g in georef.gcps)


# --- GeoTIFF ------------------------------------------------------------------------------------------
MODEL_PIXEL_SCALE, MODEL_TIEPOINT, MODEL_TRANSFORMATION = 33550, 33922, 34264
GEO_KEY_DIRECTORY, GEO_DOUBLE_PARAMS, GEO_ASCII_PARAMS = 34735, 34736, 34737
GT_MODEL_TYPE, GT_RASTER_TYPE, GEOGRAPHIC_TYPE, PROJECTED_CS_TYPE, PCS_CITATION = 1024, 1025, 2048, 3072, 3073
MODEL_PROJECTED, MODEL_GEOGRAPHIC, USER_DEFINED, RASTER_PIXEL_IS_AREA = 1, 2, 32767, 1
GDAL_METADATA = 42112
#: the metadata item carrying :attr:`GeoRef.warp <dezoomify_nb.model.GeoRef.warp>` (GeoTIFF and .aux.xml)
WARP_ITEM = "GEOREF_TRANSFORMATION"


def geokeys(info: CRSInfo) -> tuple[list[int], str]:
    """The GeoKeyDirectory (SHORTs) and GeoAsciiParams for ``info``."""
    keys: list[tuple[int, int, int, int]] = []
    ascii_params = ""
    if info.epsg is not None:
        model = MODEL_GEOGRAPHIC if info.geographic else MODEL_PROJECTED
        keys += [(GT_MODEL_TYPE, 0, 1, model), (GT_RASTER_TYPE, 0, 1, RASTER_PIXEL_IS_AREA),
                 (GEOGRAPHIC_TYPE if info.geographic else PROJECTED_CS_TYPE, 0, 1, info.epsg)]
    else:
        wkt = info.wkt
        if wkt and len(wkt) > MAX_CITATION_WKT:  # ESRI's WKT 1 is the shortest spelling
            wkt = _pyproj_wkt(wkt, "WKT1_ESRI") or wkt
        keys.append((GT_RASTER_TYPE, 0, 1, RASTER_PIXEL_IS_AREA))
        if wkt:
            if len(wkt) > MAX_CITATION_WKT:
                log.warning("the CRS's WKT is %d characters: GDAL may not read it from the GeoTIFF", len(wkt))
            wkt = wkt.replace("|", " ").encode("ascii", "replace").decode("ascii")  # '|' ends an ASCII GeoKey
            ascii_params = f"ESRI PE String = {wkt}|"
            keys = [(GT_MODEL_TYPE, 0, 1, USER_DEFINED), *keys,
                    (PCS_CITATION, GEO_ASCII_PARAMS, len(ascii_params), 0)]
    directory = [1, 1, 0, len(keys)]
    for key in sorted(keys):
        directory.extend(key)
    return directory, ascii_params


def geotiff_tags(georef: GeoRef) -> list[tuple[int, str, int, tuple | str, bool]]:
    """tifffile ``extratags`` placing the main image: its geotransform (or GCPs) and its CRS."""
    tags: list[tuple[int, str, int, tuple | str, bool]] = []
    if georef.transform is not None:
        c, a, b, f, d, e = (float(v) for v in georef.transform)
        if b == 0 and d == 0 and a > 0 and e < 0:  # north-up: scale and one tiepoint, as GDAL writes it
            tags.append((MODEL_PIXEL_SCALE, "d", 3, (a, -e, 0.0), True))
            tags.append((MODEL_TIEPOINT, "d", 6, (0.0, 0.0, 0.0, c, f, 0.0), True))
        else:
            matrix = (a, b, 0.0, c, d, e, 0.0, f, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
            tags.append((MODEL_TRANSFORMATION, "d", 16, matrix, True))
    elif georef.gcps:
        points = tuple(float(v) for col, row, x, y in georef.gcps for v in (col, row, 0.0, x, y, 0.0))
        tags.append((MODEL_TIEPOINT, "d", len(points), points, True))
    directory, ascii_params = geokeys(crs_info(georef.crs))
    tags.append((GEO_KEY_DIRECTORY, "H", len(directory), tuple(directory), True))
    if ascii_params:
        tags.append((GEO_ASCII_PARAMS, "s", 0, ascii_params, True))
    if georef.warp:  # GDAL shows it as metadata (gdalinfo); gdalwarp is told with -order N / -tps
        items = f'  <Item name="{WARP_ITEM}">{escape(georef.warp)}</Item>\n'
        tags.append((GDAL_METADATA, "s", 0, f"<GDALMetadata>\n{items}</GDALMetadata>\n", True))
    return sorted(tags)


# --- world file and GDAL PAM (.aux.xml) -----------------------------------------------------------------
def world_file_path(path: Path) -> Path:
    """The world file GDAL and QGIS look for beside ``path``: ``.pgw`` for ``.png``, ``.jgw`` for ``.jpg``
    and ``.jpeg`` (first and last letters of the extension + ``w``)."""
    ext = path.suffix[1:]
    return path.with_suffix("." + (ext[0] + ext[-1] + "w" if len(ext) >= 2 else "wld"))


def aux_xml_path(path: Path) -> Path:
    return path.with_name(path.name + ".aux.xml")


def _num(v: float) -> str:
    return repr(float(v))


def world_file(transform: tuple[float, float, float, float, float, float]) -> str:
    """The six lines of a world file: A, D, B, E, then C, F — the **centre** of the top-left pixel."""
    c, a, b, f, d, e = transform
    return "\n".join(map(_num, (a, d, b, e, c + a / 2 + b / 2, f + d / 2 + e / 2))) + "\n"


def aux_xml(georef: GeoRef, metadata: dict[str, str] | None = None) -> str:
    """A GDAL PAM document (``.aux.xml``): the CRS as WKT, the geotransform or the GCPs."""
    info = crs_info(georef.crs)
    wkt = crs_wkt(info)
    lines = ["<PAMDataset>"]
    if georef.transform is not None:
        if wkt:
            lines.append(f"  <SRS>{escape(wkt)}</SRS>")
        lines.append(f"  <GeoTransform>{', '.join(map(_num, georef.transform))}</GeoTransform>")
    elif georef.gcps:
        proj = f" Projection={quoteattr(wkt)}" if wkt else ""
        lines.append(f"  <GCPList{proj}>")
        for i, (col, row, x, y) in enumerate(georef.gcps, 1):
            lines.append(f'    <GCP Id="{i}" Pixel="{_num(col)}" Line="{_num(row)}" X="{_num(x)}" Y="{_num(y)}" Z="0"/>')
        lines.append("  </GCPList>")
    metadata = {**({WARP_ITEM: georef.warp} if georef.warp else {}), **(metadata or {})}
    if metadata:
        lines.append("  <Metadata>")
        lines += [f"    <MDI key={quoteattr(k)}>{escape(v)}</MDI>" for k, v in metadata.items()]
        lines.append("  </Metadata>")
    lines.append("</PAMDataset>")
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as f:
        f.write(text.encode("utf-8"))


def write_sidecars(path: Path, georef: GeoRef, metadata: dict[str, str] | None = None) -> list[Path]:
    """Write the world file (when there is a geotransform) and the ``.aux.xml`` of the image at ``path``;
    each replaces a file of the same name atomically. Returns their paths."""
    written = []
    if georef.transform is not None:
        written.append(world_file_path(path))
        _write_text(written[-1], world_file(georef.transform))
    written.append(aux_xml_path(path))
    _write_text(written[-1], aux_xml(georef, metadata))
    return written
