"""Small pieces the pages rely on: safe CSV downloads, readable numbers, Markdown escaping."""

from __future__ import annotations

import io

import pandas as pd

from dashboard.components.downloads import csv_bytes
from dashboard.components.format import md, number, pct, words


def test_csv_downloads_neutralise_spreadsheet_formulas_but_keep_numbers():
    frame = pd.DataFrame({"group": ["=HYPERLINK(\"http://x\")", "+1", "-cmd", "@SUM(A1)", "\tTAB", "Female"],
                          "base_rate": [0.25, -0.5, 1.0, 0.0, 0.5, 0.1234567890123]})
    text = csv_bytes(frame).decode()
    back = pd.read_csv(io.StringIO(text))
    assert back["group"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1", "'-cmd", "'@SUM(A1)", "'\tTAB", "Female"]
    assert back["base_rate"].tolist() == [0.25, -0.5, 1.0, 0.0, 0.5, 0.1234567890123]  # exact, not rounded


def test_formula_like_column_names_are_neutralised_too():
    assert csv_bytes(pd.DataFrame({"=evil": [1]})).decode().splitlines()[0] == "'=evil"


def test_numbers_and_words_read_naturally():
    assert [number(v) for v in (1490400.0, 38.5467, 17.0, 0.012345)] == ["1,490,400", "38.5", "17", "0.0123"]
    assert (pct(0.3125), pct(0.3125, 1), pct(None)) == ("31%", "31.2%", "–")
    assert (words(["sex"]), words(["sex", "race"]), words(["a", "b", "c"])) == ("sex", "sex and race", "a, b and c")


def test_text_from_the_data_cannot_become_markdown():
    assert md("income $ per *year* [link](x) <b>") == r"income \$ per \*year\* \[link\](x) \<b\>"
