from __future__ import annotations

import time

import pytest

from dezoomify_nb.dezoomers import _json5


def test_lenient_syntax() -> None:
    text = """{
        // a comment
        unquoted: 'single', "double": "a\\"b", /* block */ n: 12, f: -1.5e2, h: 0x1F, dot: .5,
        list: [1, 2, 3,], nested: {a: null, b: true, c: false,}, $weird_key1: "x",
    }"""
    assert _json5.loads(text) == {
        "unquoted": "single", "double": 'a"b', "n": 12, "f": -150.0, "h": 31, "dot": 0.5,
        "list": [1, 2, 3], "nested": {"a": None, "b": True, "c": False}, "$weird_key1": "x",
    }


@pytest.mark.parametrize("bad", ["{a: }", "{a: 1", "{a: b}", "{1: 2}", "[1 2]", "{a: 1} x", "'open", ""])
def test_invalid(bad: str) -> None:
    with pytest.raises(ValueError):
        _json5.loads(bad)


def test_string_escapes() -> None:
    assert _json5.loads(r"'\u00e9\n\'\\'") == "é\n'\\"


def test_scan_innermost_first_and_filter() -> None:
    js = "var a = {x: {y: 1}, z: 'w'}; function f() { return {TileSize: '256'}; }"
    assert list(_json5.iter_objects(js)) == [{"y": 1}, {"x": {"y": 1}, "z": "w"}, {"TileSize": "256"}]
    assert list(_json5.iter_objects(js, must_contain=("TileSize",))) == [{"TileSize": "256"}]
    assert list(_json5.iter_objects(js.encode(), must_contain=("nothing",))) == []


def test_hostile_input_is_bounded() -> None:
    started = time.monotonic()
    deep = "{a:" * 50_000 + "1" + "}" * 50_000
    found = list(_json5.iter_objects(deep))  # the innermost parse, the outer ones are too deep: no crash
    assert found[0] == {"a": 1} and len(found) <= _json5.MAX_ATTEMPTS
    braces = "{" * 200_000 + "}" * 200_000
    assert list(_json5.iter_objects(braces)) == [{}]  # only the innermost pair is an object
    many = "{TileSize: 'x'} " * 20_000
    assert len(list(_json5.iter_objects(many, must_contain=("TileSize",)))) == _json5.MAX_ATTEMPTS
    assert time.monotonic() - started < 10
