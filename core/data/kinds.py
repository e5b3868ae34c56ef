"""What kind of values a column holds, decided from the values themselves.

Kinds and what Equiscope does with them:

| kind        | meaning                                            | used as a feature |
|-------------|----------------------------------------------------|-------------------|
| numeric     | numbers with more than two distinct values         | yes               |
| boolean     | exactly two distinct values                        | yes (categorical) |
| categorical | a modest number of repeated text values            | yes               |
| datetime    | dates or timestamps (text that parses as dates)    | no                |
| text        | free text: long, mostly unique values with spaces  | no                |
| id          | identifiers: unique codes or row numbers           | no                |
| constant    | a single distinct value                            | no (dropped)      |
| empty       | every value missing                                | no (dropped)      |
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

FEATURE_KINDS = ("numeric", "boolean", "categorical")
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|index|row|record|case_?(no|num|number)?)($|_)", re.I)
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?\s*$")
SAMPLE_SIZE = 2000


def infer_kind(series: pd.Series) -> str:
    """Return the kind of one column (see the module docstring for the list)."""
    values = series.dropna()
    if values.empty:
        return "empty"
    n_unique = values.nunique()
    if n_unique == 1:
        return "constant"
    if n_unique == 2:
        return "boolean"
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series):
        return "id" if _is_numeric_id(series.name, values, n_unique) else "numeric"
    text = values.astype(str)
    sample = text.sample(min(len(text), SAMPLE_SIZE), random_state=0) if len(text) > SAMPLE_SIZE else text
    if _is_datetime_text(sample):
        return "datetime"
    unique_ratio = n_unique / len(values)
    mean_words = sample.str.split().str.len().mean()
    mean_length = sample.str.len().mean()
    if unique_ratio > 0.5 and (mean_words >= 4 or mean_length >= 40):
        return "text"
    # Mostly distinct short strings (case numbers, names, codes) identify rows; they cannot
    # generalise as categories.
    if unique_ratio > 0.9 and len(values) >= 20:
        return "id"
    return "categorical"


def infer_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """`infer_kind` for every column, keyed by column name."""
    return {column: infer_kind(frame[column]) for column in frame.columns}


def _is_numeric_id(name: object, values: pd.Series, n_unique: int) -> bool:
    """Integers that are all distinct and either named like an id or a run of row numbers."""
    if n_unique != len(values) or len(values) < 20:
        return False
    as_float = values.to_numpy(dtype="float64")
    if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
        return False
    if _ID_NAME.search(str(name)):
        return True
    ordered = np.sort(as_float)
    return bool(np.all(np.diff(ordered) == 1))


def _is_datetime_text(sample: pd.Series) -> bool:
    if sample.str.match(_DATE_LIKE).mean() < 0.9:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() >= 0.9
