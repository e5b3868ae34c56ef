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
from core.data.pii import scan_pii
from core.data.spec import PreparedData


def profile_columns(frame: pd.DataFrame, kinds: dict[str, str] | None = None,
                    pii_columns: dict[str, str] | None = None) -> list[dict]:
    """One dict per column: name, kind, dtype, n_missing, missing_rate, n_unique, summary, pii.

    `pii_columns` maps flagged columns to their PII kind; the summary of a flagged column
    never shows its values.
    """
    kinds = kinds or infer_kinds(frame)
    pii_columns = {f.column: f.kind for f in scan_pii(frame)} if pii_columns is None else pii_columns
    rows = []
    for column in frame.columns:
        series = frame[column]
        n_missing = int(series.isna().sum())
        row = {"column": column, "kind": kinds[column], "dtype": str(series.dtype),
               "n_missing": n_missing, "missing_rate": n_missing / max(len(series), 1),
               "n_unique": int(series.nunique()), "pii": pii_columns.get(column), "summary": ""}
        if column in pii_columns:
            row["summary"] = "withheld (personal data)"
        elif kinds[column] == "numeric":
            values = pd.to_numeric(series, errors="coerce")
            row["summary"] = (f"{readable_number(values.min())} to {readable_number(values.max())}, "
                              f"mean {readable_number(values.mean())}")
        elif kinds[column] in ("categorical", "boolean"):
            top = series.value_counts().head(3)
            row["summary"] = ", ".join(f"{value} ({count})" for value, count in top.items())
        rows.append(row)
    return rows


def readable_number(value: float) -> str:
    """A number for reading: thousands separators, at most 3 significant decimals (13,492; 0.0123)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


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
