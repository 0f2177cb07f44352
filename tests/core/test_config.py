import pytest

from dezoomify_nb.net import NetConfig, parse_duration, parse_header
from dezoomify_nb.net.config import merge_headers


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2.0), ("29 s", 29.0), ("2min", 120.0), ("1m", 60.0), ("1000 ms", 1.0), ("50ms", 0.05),
     ("10", 10.0), ("1.5s", 1.5), ("3000ns", 3e-6)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "2 lightyears", "-1s", "1h2m"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_headers_split_at_first_colon_and_trim():
    assert parse_header("Referer:  https://a.b/c:d ") == ("Referer", "https://a.b/c:d")
    with pytest.raises(ValueError):
        parse_header("no colon")


def test_header_precedence_defaults_referer_level_user():
    cfg = NetConfig(headers=(("user-agent", "mine"), ("X-A", "1")), referer="https://page/")
    h = cfg.request_headers(level_headers=(("Referer", "https://tile/"), ("X-A", "0")))
    assert h["Referer"] == "https://tile/"
    assert h["X-A"] == "1"
    assert h["user-agent"] == "mine"
    assert "User-Agent" not in h  # merged case-insensitively, not sent twice
    assert merge_headers((("A", "1"),), (("a", "2"),)) == {"a": "2"}


def test_local_referer_is_not_sent():
    assert "Referer" not in NetConfig(referer="/tmp/x.dzi").request_headers()


@pytest.mark.parametrize("field", ["parallelism"])
def test_invalid_config(field):
    with pytest.raises(ValueError):
        NetConfig(**{field: 0})
