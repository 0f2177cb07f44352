"""A small, safe evaluator for the expressions of ``tiles.yaml`` (the subset of Rust evalexpr people use).

No ``eval``/``exec``: the text is translated from evalexpr syntax (``&&``, ``||``, ``!``, ``^``,
``str::substring``, ``if(c, a, b)``, ``true``/``false``) to Python syntax, parsed with :func:`ast.parse`
and walked over a whitelist of nodes. Semantics follow evalexpr: 64-bit integers (overflow is an error),
integer ``/`` truncates toward zero and ``%`` keeps the sign of the dividend, mixing an int and a float
gives a float, ``^`` is a float power, ``+`` also joins strings, a tuple ``(a, b)`` renders as its parts
joined. Work is bounded: expression length, node count, string length and exponent are capped.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Value = int | float | str | bool | tuple

MAX_EXPR_CHARS = 1000
MAX_NODES = 300
MAX_STR = 10_000
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


class ExprError(ValueError):
    """An expression could not be parsed or evaluated."""


def _int(v: int) -> int:
    if not I64_MIN <= v <= I64_MAX:
        raise ExprError("integer overflow")
    return v


def _num(v: Value, what: str) -> int | float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ExprError(f"{what} expects a number, got {render(v)!r}")
    return v


def _str(v: Value, what: str) -> str:
    if not isinstance(v, str):
        raise ExprError(f"{what} expects a string, got {render(v)!r}")
    return v


def _checked_str(s: str) -> str:
    if len(s) > MAX_STR:
        raise ExprError("string too long")
    return s


def _substring(s: Value, start: Value, end: Value | None = None) -> str:
    text = _str(s, "str::substring")
    a = _num(start, "str::substring")
    b = len(text) if end is None else _num(end, "str::substring")
    if not (isinstance(a, int) and isinstance(b, int) and 0 <= a <= b <= len(text)):
        raise ExprError(f"str::substring({text!r}, {start}, {end}) is out of range")
    return text[a:b]


def _round(fn: Callable[[float], float]) -> Callable[[Value], float]:
    return lambda v: float(fn(_num(v, "rounding")))


def _minmax(pick: Callable[..., Any]) -> Callable[..., Value]:
    def f(*args: Value) -> Value:
        if len(args) == 1 and isinstance(args[0], tuple):
            args = args[0]
        if not args:
            raise ExprError("min/max of nothing")
        nums = [_num(a, "min/max") for a in args]
        return pick(nums)

    return f


FUNCTIONS: dict[str, Callable[..., Value]] = {
    "min": _minmax(min),
    "max": _minmax(max),
    "floor": _round(math.floor),
    "ceil": _round(math.ceil),
    "round": _round(lambda v: math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)),
    "abs": lambda v: abs(_num(v, "abs")),
    "len": lambda v: len(v) if isinstance(v, str | tuple) else _num(v, "len") and 1,
    "str__to_lowercase": lambda v: _str(v, "str::to_lowercase").lower(),
    "str__to_uppercase": lambda v: _str(v, "str::to_uppercase").upper(),
    "str__trim": lambda v: _str(v, "str::trim").strip(),
    "str__from": lambda v=(): render(v),
    "str__substring": _substring,
    "math__abs": lambda v: abs(_num(v, "math::abs")),
    "math__sqrt": lambda v: math.sqrt(_num(v, "math::sqrt")) if _num(v, "math::sqrt") >= 0 else math.nan,
    "math__floor": _round(math.floor),
    "math__ceil": _round(math.ceil),
}


def _translate(text: str) -> str:
    """evalexpr syntax → Python syntax, outside string literals only."""
    out = []
    pos = 0
    for m in _STRING.finditer(text):
        out.append(_translate_code(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_translate_code(text[pos:]))
    return "".join(out)


def _translate_code(code: str) -> str:
    if "'" in code or "\\" in code:
        raise ExprError("unexpected character (strings use double quotes)")
    code = re.sub(r"(\w)::(\w)", r"\1__\2", code)
    code = code.replace("&&", " and ").replace("||", " or ")
    code = re.sub(r"!(?!=)", " not ", code)
    code = code.replace("^", "**")
    return re.sub(r"\bif\s*\(", "if_(", code)


class Expr:
    """A compiled expression; :meth:`eval` it with a mapping of variables."""

    _NODES = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.BoolOp,
              ast.Compare, ast.Call, ast.Tuple, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Pow,
              ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)

    def __init__(self, text: str) -> None:
        self.text = text
        if len(text) > MAX_EXPR_CHARS:
            raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters")
        src = _translate(text).strip()
        if not src:
            self.tree: ast.AST | None = None  # evalexpr: the empty expression is the empty value
            return
        try:
            tree = ast.parse(src, mode="eval")
        except SyntaxError as exc:
            raise ExprError(f"'{text}' is not a valid expression: {exc.msg}") from None
        nodes = list(ast.walk(tree))
        if len(nodes) > MAX_NODES:
            raise ExprError(f"'{text}' is too complex")
        for node in nodes:
            if not isinstance(node, self._NODES):
                raise ExprError(f"'{text}': {type(node).__name__} is not allowed in an expression")
            if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str):
                raise ExprError(f"'{text}': constant {node.value!r} is not allowed")
            if isinstance(node, ast.Call) and (node.keywords or not isinstance(node.func, ast.Name)):
                raise ExprError(f"'{text}': only plain function calls are allowed")
        self.tree = tree.body  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"

    def names(self) -> frozenset[str]:
        """Every name the expression mentions (the variables it can read are among them)."""
        if self.tree is None:
            return frozenset()
        return frozenset(n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name))

    def eval(self, variables: Mapping[str, Value]) -> Value:
        if self.tree is None:
            return ()
        try:
            return self._eval(self.tree, variables)
        except ExprError as exc:
            raise ExprError(f"'{self.text.strip()}': {exc}") from None
        except (ArithmeticError, ValueError) as exc:
            raise ExprError(f"'{self.text.strip()}': {exc}") from None

    def eval_int(self, variables: Mapping[str, Value]) -> int:
        v = self.eval(variables)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ExprError(f"'{self.text.strip()}' should give an integer, got {render(v)!r}")
        return v

    def _eval(self, node: ast.AST, env: Mapping[str, Value]) -> Value:
        if isinstance(node, ast.Constant):
            v = node.value
            return _int(v) if isinstance(v, int) else v
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in ("true", "false"):
                return node.id == "true"
            raise ExprError(f"unknown variable {node.id!r}")
        if isinstance(node, ast.Tuple):
            return tuple(self._eval(e, env) for e in node.elts)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, env)
            if isinstance(node.op, ast.Not):
                if not isinstance(v, bool):
                    raise ExprError("! expects a boolean")
                return not v
            n = _num(v, "unary minus")
            return (_int(-n) if isinstance(n, int) else -n) if isinstance(node.op, ast.USub) else n
        if isinstance(node, ast.BoolOp):
            want_or = isinstance(node.op, ast.Or)
            for e in node.values:
                v = self._eval(e, env)
                if not isinstance(v, bool):
                    raise ExprError("&& and || expect booleans")
                if v == want_or:
                    return v
            return not want_or
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, env)
            for op, e in zip(node.ops, node.comparators, strict=True):
                right = self._eval(e, env)
                if not _compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BinOp):
            return _binop(node.op, self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.Call):
            name = node.func.id  # type: ignore[attr-defined]
            if name == "if_":
                if len(node.args) != 3:
                    raise ExprError("if(condition, then, else) takes 3 arguments")
                cond = self._eval(node.args[0], env)
                if not isinstance(cond, bool):
                    raise ExprError("if() expects a boolean condition")
                return self._eval(node.args[1] if cond else node.args[2], env)
            fn = FUNCTIONS.get(name)
            if fn is None:
                raise ExprError(f"unknown function {_pretty(name)!r}")
            args = [self._eval(a, env) for a in node.args]
            try:
                return fn(*args)
            except TypeError:
                raise ExprError(f"wrong arguments for {_pretty(name)}") from None
        raise ExprError(f"{type(node).__name__} is not allowed")  # unreachable after the whitelist


def _pretty(name: str) -> str:
    """``str__substring`` → ``str::substring`` (the name as written in the file)."""
    return re.sub(r"^(str|math)__", r"\1::", name)


def _compare(op: ast.cmpop, a: Value, b: Value) -> bool:
    if isinstance(op, ast.Eq | ast.NotEq):
        same = a == b and (isinstance(a, str) == isinstance(b, str)) and (isinstance(a, bool) == isinstance(b, bool))
        return same if isinstance(op, ast.Eq) else not same
    if isinstance(a, str) and isinstance(b, str):
        x, y = a, b
    else:
        x, y = _num(a, "comparison"), _num(b, "comparison")  # type: ignore[assignment]
    if isinstance(op, ast.Lt):
        return x < y
    if isinstance(op, ast.LtE):
        return x <= y
    if isinstance(op, ast.Gt):
        return x > y
    return x >= y


def _binop(op: ast.operator, a: Value, b: Value) -> Value:
    if isinstance(op, ast.Add) and isinstance(a, str) and isinstance(b, str):
        return _checked_str(a + b)
    x, y = _num(a, "arithmetic"), _num(b, "arithmetic")
    both_int = isinstance(x, int) and isinstance(y, int)
    if isinstance(op, ast.Pow):
        if abs(y) > 4096:
            raise ExprError("exponent too large")
        return math.pow(float(x), float(y))
    if isinstance(op, ast.Add):
        return _int(x + y) if both_int else float(x) + float(y)
    if isinstance(op, ast.Sub):
        return _int(x - y) if both_int else float(x) - float(y)
    if isinstance(op, ast.Mult):
        return _int(x * y) if both_int else float(x) * float(y)
    if isinstance(op, ast.Div | ast.Mod):
        if both_int:
            if y == 0:
                raise ExprError("division by zero")
            q = abs(x) // abs(y)
            q = _int(q if (x >= 0) == (y > 0) else -q)  # truncate toward zero, like Rust
            return q if isinstance(op, ast.Div) else x - y * q  # type: ignore[operator]
        if isinstance(op, ast.Div):
            return float(x) / float(y) if y != 0 else math.copysign(math.inf, x) if x else math.nan
        return math.fmod(float(x), float(y)) if y != 0 else math.nan
    raise ExprError(f"operator {type(op).__name__} is not allowed")


def render(value: Value) -> str:
    """A value as evalexpr prints it into a URL (Rust ``Display``: ``1.0`` → ``1``, no exponent)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value.is_integer():
            return str(int(value))
        text = repr(value)
        if "e" in text:
            from decimal import Decimal

            text = format(Decimal(text), "f")
        return text
    if isinstance(value, tuple):
        return _checked_str("".join(render(v) for v in value))
    raise ExprError(f"cannot render {value!r}")
