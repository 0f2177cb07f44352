"""File names of collection images: compact, safe on every OS (writers/naming.py compact_title)."""

from __future__ import annotations

import pytest

from dezoomify_nb.writers.naming import MAX_NAME_BYTES, compact_title


@pytest.mark.parametrize(
    "title,expected",
    [("Gospel-book, Lindisfarne Gospels, f. 1r", "Gospel-book_Lindisfarne_Gospels_f_1r"),
     ("Gospel-book, Lindisfarne Gospels - f. 1r", "Gospel-book_Lindisfarne_Gospels_f_1r"),
     ("Cassini map of France - Feuille 2 & légende", "Cassini_map_of_France_Feuille_2_légende"),
     ('a/b\\c:d*e?f"g<h>i|j', "a_b_c_d_e_f_g_h_i_j"), ("東京の地図 p. 3", "東京の地図_p_3"),
     ("  -- ", ""), ("...", ""), (None, ""), ("CON", "_CON"), ("nul.txt", "nul_txt"), ("x--y", "x--y")],
)
def test_compact_title(title, expected):
    assert compact_title(title) == expected


def test_compact_title_length():
    assert len(compact_title("word " * 200).encode()) <= MAX_NAME_BYTES
