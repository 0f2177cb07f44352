"""A small, lenient JSON5-ish parser and a scanner for object literals embedded in HTML/JS.

Viewer pages embed their configuration as JavaScript object literals, e.g. OpenSeadragon's
``tileSources: { Image: { Url: "...", TileSize: "256", ... } }``. :func:`iter_objects` finds every
balanced ``{...}`` substring (innermost first, i.e. in the order they close) and parses each with
:func:`loads`, which accepts unquoted keys, single-quoted strings, trailing commas, comments, hex
numbers and ``Infinity``/``NaN``. Candidates that cannot be parsed are skipped silently.

Hostile input is bounded: nesting depth, candidate length, the number of parse attempts and the
characters parsed in all are capped, and the ``must_contain`` prefilter is answered from a precomputed index (no quadratic substring search).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from typing import Any

MAX_DEPTH = 64
MAX_CANDIDATE_CHARS = 1 << 20
MAX_ATTEMPTS = 4096
#: characters handed to the parser by one :func:`iter_objects` call in all: nested candidates are parsed
#: again inside each enclosing one, so without it 60 levels around a 1 MiB array take minutes
MAX_PARSE_CHARS = 1 << 19

_WS_COMMENT = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)+", re.S)
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F]+|Infinity|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
)
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "0": "\0"}
_LITERALS = {"true": True, "false": False, "null": None}


class _Parser:
    def __init__(self, text: str, start: int = 0) -> None:
        self.s = text
        self.i = start

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{what} at offset {self.i}")

    def skip(self) -> None:
        m = _WS_COMMENT.match(self.s, self.i)
        if m:
            self.i = m.end()

    def peek(self) -> str:
        self.skip()
        return self.s[self.i] if self.i < len(self.s) else ""

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail("nested too deeply")
        c = self.peek()
        if c == "{":
            return self.obj(depth + 1)
        if c == "[":
            return self.arr(depth + 1)
        if c and c in "\"'":
            return self.string()
        m = _NUMBER.match(self.s, self.i)
        if m:
            self.i = m.end()
            return _number(m.group())
        m = _IDENT.match(self.s, self.i)
        if m and m.group() in _LITERALS:
            self.i = m.end()
            return _LITERALS[m.group()]
        raise self.fail("unexpected token")

    def obj(self, depth: int) -> dict[str, Any]:
        self.i += 1
        out: dict[str, Any] = {}
        while True:
            c = self.peek()
            if c == "}":
                self.i += 1
                return out
            if c and c in "\"'":
                key = self.string()
            else:
                m = _IDENT.match(self.s, self.i)
                if not m:
                    raise self.fail("expected a key")
                key = m.group()
                self.i = m.end()
            if self.peek() != ":":
                raise self.fail("expected ':'")
            self.i += 1
            out[key] = self.value(depth)
            c = self.peek()
            if c == ",":
                self.i += 1
            elif c != "}":
                raise self.fail("expected ',' or '}'")

    def arr(self, depth: int) -> list[Any]:
        self.i += 1
        out: list[Any] = []
        while True:
            if self.peek() == "]":
                self.i += 1
                return out
            out.append(self.value(depth))
            c = self.peek()
            if c == ",":
                self.i += 1
            elif c != "]":
                raise self.fail("expected ',' or ']'")

    def string(self) -> str:
        quote = self.s[self.i]
        self.i += 1
        parts: list[str] = []
        s = self.s
        while True:
            j = self.i
            while j < len(s) and s[j] != quote and s[j] != "\\" and s[j] != "\n":
                j += 1
            parts.append(s[self.i : j])
            if j >= len(s) or s[j] == "\n":
                self.i = j
                raise self.fail("unterminated string")
            if s[j] == quote:
                self.i = j + 1
                return "".join(parts)
            # backslash escape
            esc = s[j + 1 : j + 2]
            if esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", s[j + 2 : j + 6]):
                parts.append(chr(int(s[j + 2 : j + 6], 16)))
                self.i = j + 6
            elif esc == "\n":
                self.i = j + 2  # line continuation
            else:
                parts.append(_ESCAPES.get(esc, esc))
                self.i = j + 2


def _number(tok: str) -> int | float:
    sign = -1 if tok.startswith("-") else 1
    body = tok.lstrip("+-")
    if body[:2] in ("0x", "0X"):
        return sign * int(body, 16)
    if body == "Infinity":
        return sign * float("inf")
    if body == "NaN":
        return float("nan")
    if re.fullmatch(r"\d+", body):
        return sign * int(body)
    return sign * float(body)


def loads(text: str | bytes, start: int = 0, end: int | None = None) -> Any:
    """Parse one JSON5-ish value from ``text[start:end]`` (without copying it).

    Raise ValueError when that span is not exactly one value.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if start == 0 and text.startswith("\ufeff"):
        start = 1
    end = len(text) if end is None else end
    p = _Parser(text, start)
    try:
        v = p.value(0)
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps us far from it
        raise ValueError("nested too deeply") from None
    if p.i < end:
        p.skip()
    if p.i != end:
        raise p.fail("not exactly one value")
    return v


def brace_spans(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every balanced ``{...}`` substring, in closing order (innermost first)."""
    stack: list[int] = []
    for m in re.finditer(r"[{}]", text):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            yield stack.pop(), m.end()


def iter_objects(text: str | bytes, must_contain: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    """Every embedded object literal that parses, innermost first.

    With ``must_contain``, only candidates containing at least one of those words are parsed.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    index: list[int] = []
    words = list(must_contain)
    if words:
        index = sorted(m.start() for w in words for m in re.finditer(re.escape(w), text))
        if not index:
            return
    attempts, budget = 0, MAX_PARSE_CHARS
    for start, end in brace_spans(text):
        if end - start > min(MAX_CANDIDATE_CHARS, budget):
            continue
        if words:
            k = bisect.bisect_left(index, start)
            if k >= len(index) or index[k] >= end:
                continue
        attempts += 1
        if attempts > MAX_ATTEMPTS:
            return
        budget -= end - start
        try:
            v = loads(text, start, end)
        except ValueError:
            continue
        if isinstance(v, dict):
            yield v
