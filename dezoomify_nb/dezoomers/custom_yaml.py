"""Custom ``tiles.yaml``: describe any tile layout by hand (dezoomify-rs's ``custom`` dezoomer).

.. code-block:: yaml

    url_template: "https://host/TileGroup0/3-{{x}}-{{y}}.jpg"   # {{ expression }}, {{ x:03 }} zero-pads
    x_template: "x * tile_size"                                 # pixel position (default "x")
    y_template: "y * tile_size"                                 # (default "y")
    variables:
      - { name: x, from: 0, to: 3 }                             # inclusive; step defaults to 1
      - { name: y, from: 0, to: 4, step: 1 }
      - { name: tile_size, value: 256 }                         # a constant
    headers: { Referer: "https://host/viewer" }                 # sent with every tile request
    width: 878                                                  # optional: the canvas size
    height: 1153
    title: "A Palace"

The input is a URL or local path ending in ``tiles.yaml``. Tiles are the cartesian product of the
variables in declaration order (first varies slowest). Expressions use :mod:`._expr` (evalexpr semantics).

The tile positions must form a regular grid (the same step between consecutive distinct x, and y): that is
what every real layout is, and what lets the image be a lazy zarr/dask array. Differences from dezoomify-rs:

* without ``width``/``height`` the size comes from the bottom-right tile, fetched once while opening (the
  fetch uses the default headers, not the file's ``headers``; when it fails the tiles are assumed full);
  dezoomify-rs only knows the size after the whole download;
* a grid that does not start at (0, 0) is moved there (no empty margin);
* without ``x_template`` and without a variable ``x`` the x position is 0 (same for y), so a single row
  or column needs only one variable (dezoomify-rs: "unknown variable");
* at most :data:`MAX_TILES` tiles (dezoomify-rs allows 2³² values per variable), and YAML aliases are
  refused (no "billion laughs");
* tile URLs are made from the template when each tile is fetched (the level keeps the template and, per grid
  cell, which combination of the variables fills it: 4 bytes a tile), and a URL longer than
  :data:`MAX_URL_CHARS` is refused, so a small file cannot make gigabytes of URL strings.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_SIDE, MAX_TILE_SIDE, Image, Level, is_url, resolve_relative
from ._common import split_query
from ._expr import Expr, ExprError, Value, render
from .base import Context, Dezoomer
from .generic import image_size

NAME = "Custom tiles"
MAX_TILES = 1 << 20
MAX_YAML_BYTES = 1 << 20
#: the longest tile URL a template may expand to (characters)
MAX_URL_CHARS = 8192
U32_MAX = (1 << 32) - 1
_NAME_RE = re.compile(r"^\w+$")
_EXPR_RE = re.compile(r"\{\{.*?}}")
_ZERO_RE = re.compile(r":0(\d+)$")
HINT = "See the tiles.yaml example in the README (url_template, variables, x_template, y_template)."


#: a variable as ``(name, first value, step, number of values)``
Variable = tuple[str, int, int, int]


@dataclass(frozen=True)
class CustomLevel(Level):
    """The single level of a tiles.yaml. Tile URLs are made on demand: grid cell ``row·cols + col`` is
    filled by combination ``cells[cell]`` (little-endian int32) of the variables (first slowest), whose
    values expand ``template``; relative URLs are resolved against ``base``."""

    template: str = ""
    variables: tuple[Variable, ...] = ()
    base: str = ""
    cells: bytes = b""

    @functools.cached_property
    def _url_template(self) -> UrlTemplate:
        return UrlTemplate(self.template)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_url_template", None)  # compiled again where it is unpickled
        return state

    def tile_url(self, col: int, row: int) -> str:
        i = 4 * (row * self.cols + col)
        return expand_url(self._url_template, self.variables, int.from_bytes(self.cells[i : i + 4], "little"),
                          self.base)


def combination(variables: tuple[Variable, ...], index: int) -> dict[str, Value]:
    """The variables' values in combination ``index`` of their cartesian product (first variable slowest)."""
    env: dict[str, Value] = {}
    for name, start, step, count in reversed(variables):
        index, k = divmod(index, count)
        env[name] = start + k * step
    return env


def expand_url(template: UrlTemplate, variables: tuple[Variable, ...], index: int, base: str = "") -> str:
    """The URL of combination ``index``, resolved against ``base``; MetadataError past :data:`MAX_URL_CHARS`."""
    try:
        url = resolve_relative(base, template.eval(combination(variables, index), limit=MAX_URL_CHARS))
    except ExprError as exc:
        raise MetadataError(f"tiles.yaml: {exc}", hint=HINT) from None
    if len(url) > MAX_URL_CHARS:
        raise MetadataError(f"tiles.yaml: a tile URL is longer than {MAX_URL_CHARS} characters", hint=HINT)
    return url


class UrlTemplate:
    """``"a{{x}}b{{ y*2 :03}}"`` → literal and expression parts."""

    def __init__(self, text: str) -> None:
        self.parts: list[str | tuple[Expr, int]] = []
        pos = 0
        for m in _EXPR_RE.finditer(text):
            self.parts.append(text[pos : m.start()])
            inner = m.group(0)[2:-2]
            width = 0
            z = _ZERO_RE.search(inner)
            if z:
                inner, width = inner[: z.start()], int(z.group(1))
                if width > 64:
                    raise ExprError(f"padding {width} is too wide")
            self.parts.append((Expr(inner), width))
            pos = m.end()
        self.parts.append(text[pos:])
        literal = sum(len(p) for p in self.parts if isinstance(p, str))
        if literal > MAX_URL_CHARS:
            raise ExprError(f"url_template has {literal} characters besides its expressions: a tile URL may "
                            f"have at most {MAX_URL_CHARS}")

    def eval(self, env: dict[str, Value], *, limit: int | None = None) -> str:
        """The URL for these variables; ExprError once it grows past ``limit`` characters (when given)."""
        out = []
        size = 0
        for p in self.parts:
            if isinstance(p, str):
                text = p
            else:
                expr, width = p
                text = render(expr.eval(env)).rjust(width, "0")
            out.append(text)
            size += len(text)
            if limit is not None and size > limit:
                raise ExprError(f"a tile URL is longer than {limit} characters")
        return "".join(out)


def _int_field(item: dict[str, Any], key: str, default: int | None = None) -> int:
    v = item.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not -(1 << 63) <= v < (1 << 63):
        raise MetadataError(f"tiles.yaml: variable {item.get('name')!r}: {key} must be an integer, got {v!r}",
                            hint=HINT)
    return v


def variable_values(item: object) -> tuple[str, range | tuple[int]]:
    """``(name, values)`` of one ``variables`` entry."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise MetadataError(f"tiles.yaml: invalid variable {item!r} (needs a name)", hint=HINT)
    name = item["name"]
    if not _NAME_RE.match(name):
        raise MetadataError(f"tiles.yaml: invalid variable name {name!r}", hint=HINT)
    if "value" in item and "from" not in item:
        return name, (_int_field(item, "value"),)
    start, stop, step = _int_field(item, "from"), _int_field(item, "to"), _int_field(item, "step", 1)
    if step == 0:
        raise MetadataError(f"tiles.yaml: variable {name!r} has step 0", hint=HINT)
    q = abs(stop - start) // abs(step)
    steps = q if (stop - start >= 0) == (step > 0) else -q  # Rust i64 division truncates toward zero
    if steps < 0:
        raise MetadataError(f"tiles.yaml: variable {name!r} never reaches {stop} from {start} by {step}", hint=HINT)
    if steps >= MAX_TILES:
        raise MetadataError(f"tiles.yaml: variable {name!r} has {steps + 1} values (at most {MAX_TILES})", hint=HINT)
    return name, range(start, start + steps * step + (1 if step > 0 else -1), step)


#: YAML nodes (scalars, lists, mappings) and nesting levels in a tiles.yaml (real ones have a few dozen, 3)
MAX_YAML_NODES = 10_000
MAX_YAML_DEPTH = 32
#: libyaml's loader when PyYAML has it (the pure-Python scanner takes seconds for 1 MiB of one scalar)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _no_aliases(data: bytes) -> None:
    """Refuse aliases, more than :data:`MAX_YAML_NODES` nodes or :data:`MAX_YAML_DEPTH` levels, from the
    event stream (constant memory), before ``safe_load`` builds (recursively) any object."""
    nodes = depth = 0
    try:
        for event in yaml.parse(data, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise MetadataError("tiles.yaml: YAML aliases (*name) are not supported", hint=HINT)
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if nodes > MAX_YAML_NODES or depth > MAX_YAML_DEPTH:
                raise MetadataError(f"tiles.yaml has more than {MAX_YAML_NODES} values or {MAX_YAML_DEPTH} levels "
                                    "of nesting", hint=HINT)
    except yaml.YAMLError as exc:
        raise MetadataError(f"tiles.yaml is not valid YAML: {exc}", hint=HINT) from None


def parse_config(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_YAML_BYTES:
        raise MetadataError(f"tiles.yaml is larger than {MAX_YAML_BYTES} bytes")
    _no_aliases(data)
    conf = yaml.load(data, Loader=_LOADER)  # a safe loader (CSafeLoader or SafeLoader)
    if not isinstance(conf, dict):
        raise MetadataError("tiles.yaml should be a mapping with url_template and variables", hint=HINT)
    for key in ("url_template", "variables"):
        if key not in conf:
            raise MetadataError(f"tiles.yaml: missing field `{key}`", hint=HINT)
    if not isinstance(conf["url_template"], str) or not isinstance(conf["variables"], list):
        raise MetadataError("tiles.yaml: url_template must be a string and variables a list", hint=HINT)
    return conf


@dataclass(frozen=True)
class Layout:
    """A parsed tiles.yaml: the URL template, the position templates and the variables."""

    url: UrlTemplate
    x: Expr
    y: Expr
    variables: tuple[Variable, ...]

    @property
    def count(self) -> int:
        return math.prod(v[3] for v in self.variables)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Every tile's ``x`` and ``y``, in dezoomify-rs order (cartesian product, first variable slowest)."""
        return self._axis_values(self.x, "x"), self._axis_values(self.y, "y")

    def _axis_values(self, expr: Expr, what: str) -> np.ndarray:
        """``expr`` for every combination, as int64. It is evaluated once per combination of the variables
        it mentions only (``x * tile_size``: once per ``x``), then spread over the others."""
        used = [i for i, v in enumerate(self.variables) if v[0] in expr.names()]
        sub = [self.variables[i] for i in used]
        values = np.empty(math.prod(v[3] for v in sub), dtype=np.int64)
        try:
            for k, combo in enumerate(itertools.product(*(range(start, start + count * step, step)
                                                          for _, start, step, count in sub))):
                env: dict[str, Value] = {v[0]: c for v, c in zip(sub, combo, strict=True)}
                value = expr.eval_int(env)
                if not 0 <= value <= U32_MAX:
                    raise ExprError(f"tile position {what}={value} is negative or too large")
                values[k] = value
        except ExprError as exc:
            raise MetadataError(f"tiles.yaml: {exc}", hint=HINT) from None
        shape = [v[3] for v in self.variables]
        spread = [shape[i] if i in used else 1 for i in range(len(shape))]
        return np.broadcast_to(values.reshape(spread), shape).reshape(-1)

    def tile_url(self, index: int, base: str = "") -> str:
        return expand_url(self.url, self.variables, index, base)


def layout(conf: dict[str, Any]) -> Layout:
    try:
        url_t = UrlTemplate(conf["url_template"])
    except ExprError as exc:
        raise MetadataError(f"tiles.yaml: {exc}", hint=HINT) from None
    variables = []
    for item in conf["variables"]:
        name, values = variable_values(item)
        step = values.step if isinstance(values, range) else 1
        variables.append((name, values[0], step, len(values)))
    names = [v[0] for v in variables]
    try:  # without a template and without a variable of that name, the position is 0 (a single row/column)
        x_t = Expr(str(conf.get("x_template", "x" if "x" in names else "0")))
        y_t = Expr(str(conf.get("y_template", "y" if "y" in names else "0")))
    except ExprError as exc:
        raise MetadataError(f"tiles.yaml: {exc}", hint=HINT) from None
    out = Layout(url_t, x_t, y_t, tuple(variables))
    if out.count > MAX_TILES:
        raise MetadataError(f"tiles.yaml describes {out.count} tiles (at most {MAX_TILES})", hint=HINT)
    return out


def enumerate_tiles(conf: dict[str, Any], base: str = "") -> list[tuple[str, int, int]]:
    """Every ``(url, x, y)`` in dezoomify-rs order (a small file's whole list: the dezoomer itself never
    makes it). Relative tile URLs are resolved against ``base`` (the tiles.yaml location), when given."""
    lay = layout(conf)
    xs, ys = lay.positions()
    return [(lay.tile_url(i, base), int(x), int(y)) for i, (x, y) in enumerate(zip(xs, ys, strict=True))]


def _axis(positions: np.ndarray, what: str) -> tuple[int, int | None, int]:
    """``(origin, step or None, count)`` of positions on a regular grid."""
    ordered = np.unique(positions)
    if len(ordered) == 1:
        return int(ordered[0]), None, 1
    steps = np.unique(np.diff(ordered))
    if len(steps) != 1:
        raise MetadataError(f"tiles.yaml: the {what} positions are not evenly spaced ({ordered[:6].tolist()}…)",
                            hint="Tiles must form a regular grid; check x_template and y_template.")
    step = int(steps[0])
    if step > MAX_TILE_SIDE:
        raise MetadataError(f"tiles.yaml: tiles {step} px apart are over the tile size cap")
    return int(ordered[0]), step, len(ordered)


def grid_cells(xs: np.ndarray, ys: np.ndarray) -> tuple[tuple[int, int | None, int], tuple[int, int | None, int],
                                                         np.ndarray]:
    """The x and y axes of the tiles at ``(xs[i], ys[i])`` and, per grid cell (row-major), the index ``i``
    of the tile that fills it (a later tile at the same place wins, as when pasting in order)."""
    x0, sx, cols = xa = _axis(xs, "x")
    y0, sy, rows = ya = _axis(ys, "y")
    flat = (ys - y0) // (sy or 1) * cols + (xs - x0) // (sx or 1)
    # the first of each cell in reverse order is its last tile; the cells come out sorted (row-major)
    filled, first_from_end = np.unique(flat[::-1], return_index=True)
    if len(filled) != cols * rows:
        raise MetadataError(f"tiles.yaml: {len(filled)} tiles do not fill the {cols}x{rows} grid they span",
                            hint="Every row must have a tile in every column.")
    return xa, ya, len(flat) - 1 - first_from_end


class CustomYamlDezoomer(Dezoomer):
    name = "custom"
    description = "custom tiles.yaml (URL template with expressions, variables, positions, headers)"

    def images(self, ctx: Context) -> list[Image]:
        path = split_query(ctx.url) if is_url(ctx.url) else ctx.url
        if not path.lower().endswith(("tiles.yaml", "tiles.yml")):
            raise WrongDezoomer("not a tiles.yaml file")
        conf = parse_config(ctx.get())
        lay = layout(conf)
        if lay.count == 0:
            raise MetadataError("tiles.yaml describes no tile", hint=HINT)
        lay.tile_url(0, ctx.url), lay.tile_url(lay.count - 1, ctx.url)  # a URL too long: told at once
        xs, ys = lay.positions()
        (x0, sx, cols), (y0, sy, rows), cells = grid_cells(xs, ys)
        del xs, ys
        lay.tile_url(int(cells[0]), ctx.url)  # an expression that fails: told now
        last_url = lay.tile_url(int(cells[-1]), ctx.url)
        width, height = self._size(ctx, conf, last_url, (x0, sx, cols), (y0, sy, rows))
        tw, th = sx or width, sy or height
        headers = self._headers(conf)
        level = CustomLevel(width, height, tw, th, headers=headers, name=NAME, template=conf["url_template"],
                            variables=lay.variables, base=ctx.url, cells=cells.astype("<i4").tobytes())
        title = conf.get("title")
        return [Image(levels=(level,), title=str(title) if title is not None else None, dezoomer=self.name,
                      url=ctx.url)]

    @staticmethod
    def _size(ctx: Context, conf: dict[str, Any], last_url: str, xa: tuple[int, int | None, int],
              ya: tuple[int, int | None, int]) -> tuple[int, int]:
        given = []
        for key, (origin, step, count) in (("width", xa), ("height", ya)):
            v = conf.get(key)
            if v is None:
                given.append(None)
                continue
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v - origin <= MAX_SIDE:
                raise MetadataError(f"tiles.yaml: invalid {key} {v!r}", hint=HINT)
            if step is not None and v - origin <= (count - 1) * step:
                raise MetadataError(f"tiles.yaml: {key} {v} is smaller than the tile grid", hint=HINT)
            given.append(v - origin)
        if given[0] is not None and given[1] is not None:
            return given[0], given[1]
        last = image_size(ctx.try_get(last_url))
        out = []
        for i, (_origin, step, count) in enumerate((xa, ya)):
            if given[i] is not None:
                out.append(given[i])
            elif last is not None:
                out.append((count - 1) * (step or 0) + (min(last[i], step) if step else last[i]))
            elif step is not None:
                out.append(count * step)
            else:
                raise MetadataError(f"tiles.yaml: cannot tell the image size (the tile {last_url} failed)",
                                    hint="Add width and height to tiles.yaml.")
        return out[0], out[1]

    @staticmethod
    def _headers(conf: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        raw = conf.get("headers")
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise MetadataError("tiles.yaml: headers must be a mapping of name: value", hint=HINT)
        out = []
        for k, v in raw.items():
            if not isinstance(k, str) or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", k) or isinstance(
                v, dict | list) or v is None or "\n" in str(v) or "\r" in str(v):
                raise MetadataError(f"tiles.yaml: invalid header {k!r}: {v!r}", hint=HINT)
            out.append((k, str(v)))
        return tuple(out)
