"""CSV exports cannot run as spreadsheet formulas (CSV injection)."""

from __future__ import annotations

import io

import pandas as pd

from core.results.export import csv_bytes


def test_csv_downloads_neutralise_spreadsheet_formulas_but_keep_numbers():
    frame = pd.DataFrame({"group": ["=HYPERLINK(\"http://x\")", "+1", "-cmd", "@SUM(A1)", "\tTAB", "Female"],
                          "base_rate": [0.25, -0.5, 1.0, 0.0, 0.5, 0.1234567890123]})
    text = csv_bytes(frame).decode()
    back = pd.read_csv(io.StringIO(text))
    assert back["group"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1", "'-cmd", "'@SUM(A1)", "'\tTAB", "Female"]
    assert back["base_rate"].tolist() == [0.25, -0.5, 1.0, 0.0, 0.5, 0.1234567890123]  # exact, not rounded


def test_formula_like_column_names_are_neutralised_too():
    assert csv_bytes(pd.DataFrame({"=evil": [1]})).decode().splitlines()[0] == "'=evil"
