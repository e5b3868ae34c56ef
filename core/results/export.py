"""Exports that are safe to open: CSV that a spreadsheet cannot execute.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel
and LibreOffice (CSV injection); such text cells get a leading apostrophe, which spreadsheets
show as plain text. Numbers are written unchanged (a negative number is not a formula). Rows end
in CRLF, so a cell holding a carriage return is quoted and cannot start a new row.
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
    # CRLF rows: the csv writer quotes a field holding any line-terminator character, so a bare
    # "\r" inside a cell (which spreadsheets read as a new row, "x\r=cmd") is quoted too.
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
