import pytest

from dezoomify_nb.errors import LevelSelectionError
from dezoomify_nb.model import TemplateLevel
from dezoomify_nb.select import choose_level

LEVELS = [TemplateLevel(w, h, 256, 256, template="{col}_{row}") for w, h in [(4000, 3000), (2000, 1500), (1000, 750)]]


def test_default_is_none_so_the_caller_can_ask():
    assert choose_level(LEVELS) is None


def test_largest_and_zoom_level():
    assert choose_level(LEVELS, largest=True) == 0
    assert choose_level(LEVELS, zoom_level=2) == 2
    with pytest.raises(LevelSelectionError):
        choose_level(LEVELS, zoom_level=3)


@pytest.mark.parametrize(
    ("w", "h", "expected"), [(2000, None, 1), (1999, None, 2), (None, 3000, 0), (4000, 1499, 2), (5000, 5000, 0)]
)
def test_max_width_height(w, h, expected):
    assert choose_level(LEVELS, max_width=w, max_height=h) == expected


def test_nothing_fits():
    with pytest.raises(LevelSelectionError, match="no level fits"):
        choose_level(LEVELS, max_width=10)
