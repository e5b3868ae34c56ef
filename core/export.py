"""Exports that are safe to open: CSV that a spreadsheet cannot execute.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel
and LibreOffice (CSV injection); such text cells get a leading apostrophe, which spreadsheets
show as plain text. Numbers are written unchanged (a negative number is not a formula).
"""

from __future__ import annotations

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """`value` with a leading apostrophe if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV of `frame` with formula-like text cells (and column names) neutralised."""
    safe = frame.copy()
    safe.columns = [neutralise(str(column)) for column in safe.columns]
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise)
    return safe.to_csv(index=False).encode("utf-8")
