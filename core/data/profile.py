"""What a reviewer should know about a table before any model is trained.

`profile_columns` describes every column (kind, missing values, distinct values, range or
most common values, personal-data flag). `profile_groups` describes every group of every
sensitive attribute: its size, its share of the rows, its base rate (share of labelled
rows with the positive label) and its missing rate (share of missing feature cells).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.kinds import infer_kinds
from core.data.loading import Progress
from core.data.pii import scan_pii
from core.data.spec import PreparedData, parse_threshold


def profile_columns(frame: pd.DataFrame, kinds: dict[str, str] | None = None,
                    pii_columns: dict[str, str] | None = None, progress: Progress | None = None) -> list[dict]:
    """One dict per column: name, kind, dtype, n_missing, missing_rate, n_unique, summary, pii.

    `pii_columns` maps flagged columns to their PII kind; the summary of a flagged column
    never shows its values. `progress` hears "column k of n" before each column is profiled
    (a 500,000-row table takes about a second).
    """
    kinds = kinds or infer_kinds(frame)
    pii_columns = {f.column: f.kind for f in scan_pii(frame)} if pii_columns is None else pii_columns
    rows = []
    n_columns = frame.shape[1]
    for position, column in enumerate(frame.columns):
        if progress is not None:
            progress(position / max(n_columns, 1), f"Profiling column {position + 1} of {n_columns}: '{column}'")
        series = frame[column]
        n_missing = int(series.isna().sum())
        row = {"column": column, "kind": kinds[column], "dtype": str(series.dtype),
               "n_missing": n_missing, "missing_rate": n_missing / max(len(series), 1),
               "n_unique": int(series.nunique()), "pii": pii_columns.get(column), "summary": ""}
        if column in pii_columns:
            row["summary"] = "withheld (personal data)"
        elif kinds[column] == "numeric":
            values = pd.to_numeric(series, errors="coerce")
            grouping = not looks_like_years(values)  # 1997 to 2002, not "1,997 to 2,002"
            low, high, mean = (readable_number(v, grouping) for v in (values.min(), values.max(), values.mean()))
            row["summary"] = f"{low} to {high}, mean {mean}"
        elif kinds[column] in ("categorical", "boolean"):
            top = series.value_counts().head(3)
            row["summary"] = ", ".join(f"{value} ({count})" for value, count in top.items())
        rows.append(row)
    return rows


#: Calendar years a table may hold: whole numbers in this range read as years, without separators.
YEAR_RANGE = (1800, 2100)


def looks_like_years(values: pd.Series) -> bool:
    """True when every non-missing value is a whole number in YEAR_RANGE (a year or birth-year column):
    such a column must read "1997 to 2002", since thousands separators ("1,997") make a year a count."""
    values = values.dropna()
    if values.empty:
        return False
    numbers = values.to_numpy(dtype=float)
    return bool(np.all(numbers == np.round(numbers)) and numbers.min() >= YEAR_RANGE[0]
                and numbers.max() <= YEAR_RANGE[1])


def readable_number(value: float, grouping: bool = True) -> str:
    """A number for reading: thousands separators (unless `grouping` is False, for years), at most 3
    significant decimals (13,492; 0.0123; a mean year 1999.4 reads 1999)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}" if grouping else f"{value:.0f}"
    return f"{value:.3g}"


def negative_label(target: pd.Series, positive_label) -> str:
    """What the table calls the outcome that is not `positive_label`: the other value of a two-valued
    target ("No" where the positive is "Yes"), else "not <positive>" (a target with more values, where
    every other value is negative, or a threshold such as "wage >= 10").

    The pages and the report say "No" where the data says "No"; "not Yes" read as a made-up word.
    """
    if parse_threshold(str(positive_label), str(target.name)) is not None:
        return f"not {positive_label}"
    others = {_label_text(v) for v in target.dropna()} - {_label_text(positive_label)}
    return others.pop() if len(others) == 1 else f"not {positive_label}"


def _label_text(value) -> str:
    """A label as text, a whole number without its ".0" (a 0/1 target read as floats is "0" and "1")."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def profile_groups(data: PreparedData) -> dict[str, list[dict]]:
    """Per sensitive attribute, one dict per group: group, n, share, n_labelled, base_rate, missing_rate.

    base_rate = (# labelled rows with y = 1) / (# labelled rows) in the group;
    missing_rate = (# missing feature cells) / (# rows x # features) in the group.
    """
    missing_cells = data.frame[data.features].isna().to_numpy().mean(axis=1)
    labelled = data.labelled
    result: dict[str, list[dict]] = {}
    for attribute in data.groups.columns:
        rows = []
        groups = data.groups[attribute].to_numpy()
        for group in pd.unique(groups):
            in_group = groups == group
            n_labelled = int((in_group & labelled).sum())
            base_rate = float(np.nanmean(data.y[in_group & labelled])) if n_labelled else None
            rows.append({"group": str(group), "n": int(in_group.sum()),
                         "share": float(in_group.mean()), "n_labelled": n_labelled,
                         "base_rate": base_rate, "missing_rate": float(missing_cells[in_group].mean()),
                         "small": bool(in_group.sum() < data.spec.min_group_size)})
        result[attribute] = sorted(rows, key=lambda r: -r["n"])
    return result
