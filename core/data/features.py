"""Turn a table's feature columns into the float matrix models train on, and back.

`TabularEncoder` follows scikit-learn's conventions: parameters in `__init__`, `fit` on
training rows only, learned state with a trailing underscore, `transform` for any rows.

Numeric column x (fit on training rows):
    z = clip((x_imputed - mean) / std, -CLIP, CLIP),  x_imputed = x, or the training median where missing
plus a missing indicator `x (missing)` if x had missing values in training. std = 0 -> 1.
A point-mass column (more than POINT_MASS_MIN_DISTINCT distinct values, the most common one
held by at least `point_mass_share` of the training rows: amounts that are mostly 0) also gets
one indicator `x = v` per frequent value v (seen at least `min_frequency` times; the
`max_categories` commonest): x == v exactly, 0 where x is missing. Why: Adult's capital gain is
0 for 92% of people and its other values act as codes (15,024 and 7,688 mean income > 50K
nearly always, 2,174 does not); an MLP on the standardised value alone stayed 0.018 ROC AUC
below gradient boosting, with the indicators 0.005 (docs/finetuning.md, issue 16 item 4).
Categorical (and boolean) column: missing is its own category "(missing)"; categories seen
fewer than `min_frequency` times in training are merged into "(other)"; at most
`max_categories` categories are kept (the most frequent), the rest go to "(other)"; one
one-hot feature per kept category. A category never seen in training maps to "(other)" if
that bucket exists, else to an all-zero block.

`inverse_transform` maps a matrix back to readable columns (the mean for numerics, the
arg-max category for one-hot blocks), which explanations need.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import InputError

MISSING = "(missing)"
OTHER = "(other)"
CLIP = 10.0
#: A numeric column with more distinct values than this whose commonest value holds at least
#: POINT_MASS_SHARE of the training rows gets value indicators (module docstring). Columns with
#: this many values or fewer are small counts (0, 1, 2...), which the standardised value orders well.
POINT_MASS_MIN_DISTINCT = 10
POINT_MASS_SHARE = 0.5


class TabularEncoder:
    """Encode numeric and categorical columns into one float32 matrix (see module docstring)."""

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None,
                 max_categories: int = 30, min_frequency: int = 5,
                 point_mass_share: float | None = POINT_MASS_SHARE) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.max_categories = max_categories
        self.min_frequency = min_frequency
        self.point_mass_share = point_mass_share  # None: no value indicators

    def fit(self, frame: pd.DataFrame) -> TabularEncoder:
        """Learn imputation values, scales and categories from the training rows in `frame`."""
        numeric = list(self.numeric or [])
        categorical = list(self.categorical or [])
        if not numeric and not categorical:
            raise InputError("No feature columns to encode", "Choose at least one feature column")
        self.columns_ = numeric + categorical
        self.kinds_ = {c: "numeric" for c in numeric} | {c: "categorical" for c in categorical}
        self.medians_, self.means_, self.stds_, self.has_missing_ = {}, {}, {}, {}
        self.categories_: dict[str, list[str]] = {}
        self.values_: dict[str, list[float]] = {}
        for column in numeric:
            values = _as_float(frame[column], column)
            finite = values[np.isfinite(values)]
            self.medians_[column] = float(np.median(finite)) if finite.size else 0.0
            self.means_[column], self.stds_[column] = _mean_std(finite)
            self.has_missing_[column] = bool(np.isnan(values).any())
            indicated = self._learn_point_masses(finite, len(values))
            if indicated:
                self.values_[column] = indicated
        for column in categorical:
            self.categories_[column] = self._learn_categories(_as_text(frame[column]))
        self._build_layout()
        return self

    def _learn_categories(self, values: pd.Series) -> list[str]:
        counts = values.value_counts()
        frequent = counts[counts >= self.min_frequency]
        if frequent.empty:  # tiny tables: keep the commonest values rather than one bucket
            frequent = counts
        kept = list(frequent.index[: self.max_categories])
        if len(kept) < len(counts):
            kept.append(OTHER)
        return [str(category) for category in kept]

    def _learn_point_masses(self, finite: np.ndarray, n_rows: int) -> list[float]:
        """The values that get an indicator: none unless the column is a point mass (module
        docstring); else the commonest values seen at least min_frequency times, at most
        max_categories, commonest first (ties: the smaller value first)."""
        if self.point_mass_share is None or not finite.size:
            return []
        values, counts = np.unique(finite, return_counts=True)
        if len(values) <= POINT_MASS_MIN_DISTINCT or counts.max() < self.point_mass_share * n_rows:
            return []
        order = np.argsort(-counts, kind="stable")[: self.max_categories]
        return [float(values[i]) for i in order if counts[i] >= self.min_frequency]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode rows into a float32 matrix of shape (len(frame), n_features_out_)."""
        self._check_fitted()
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise InputError(f"Columns {missing} are missing from the rows to encode",
                             "Give rows with the same columns as the training table")
        out = np.zeros((len(frame), self.n_features_out_), dtype=np.float32)
        for column in self.columns_:
            self.encode_column_into(out, column, frame[column])
        return out

    def encode_column_into(self, out: np.ndarray, column: str, series: pd.Series) -> None:
        """Write one column's block of the encoding into `out` (zeros, shape (len(series),
        n_features_out_); a memory map will do): how `transform` encodes, and how a table read one
        column at a time is encoded (core.data.mapped.write_encoded_columns)."""
        block = self.column_slices_[column]
        if self.kinds_[column] == "numeric":
            self.encode_numeric_into(out, column, _as_float(series, column))
        else:
            categories = self.categories_[column]
            # Position of each value among the categories, -1 if unseen (pd.Categorical with
            # unseen values does the same but is deprecated in pandas 3).
            codes = pd.Index(categories).get_indexer(_as_text(series)).astype(np.int64)
            if OTHER in categories:  # unseen values go to the "(other)" bucket
                codes[codes < 0] = categories.index(OTHER)
            rows = np.flatnonzero(codes >= 0)
            out[rows, block.start + codes[rows]] = 1.0

    def encode_numeric_into(self, out: np.ndarray, column: str, values: np.ndarray) -> None:
        """Write a numeric column's block (value, missing indicator, value indicators) for float
        `values` (NaN where missing) into `out`; explanations' samples are encoded with it too."""
        start = self.column_slices_[column].start
        is_missing = np.isnan(values)
        imputed = np.where(is_missing, self.medians_[column], values)
        out[:, start] = np.clip((imputed - self.means_[column]) / self.stds_[column], -CLIP, CLIP)
        if self.has_missing_[column]:
            start += 1
            out[:, start] = is_missing
        for offset, value in enumerate(self.values_.get(column, ()), start=start + 1):
            out[:, offset] = values == value

    def fit_transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.fit(frame).transform(frame)

    def inverse_transform(self, matrix: np.ndarray) -> pd.DataFrame:
        """Readable columns from an encoded matrix: numerics un-standardised (NaN where the
        missing indicator is on), categoricals as their arg-max category."""
        self._check_fitted()
        matrix = np.asarray(matrix, dtype=np.float64)
        columns = {}
        for column in self.columns_:
            block = self.column_slices_[column]
            if self.kinds_[column] == "numeric":
                values = matrix[:, block.start] * self.stds_[column] + self.means_[column]
                if self.has_missing_[column]:
                    values = np.where(matrix[:, block.start + 1] > 0.5, np.nan, values)
                columns[column] = values
            else:
                categories = np.asarray(self.categories_[column], dtype=object)
                columns[column] = categories[np.argmax(matrix[:, block], axis=1)]
        return pd.DataFrame(columns)

    def get_feature_names_out(self) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.feature_names_, dtype=object)

    def to_dict(self) -> dict:
        """Learned state as plain JSON-able data (no pickle)."""
        self._check_fitted()
        return {"params": {"numeric": self.numeric, "categorical": self.categorical,
                           "max_categories": self.max_categories, "min_frequency": self.min_frequency,
                           "point_mass_share": self.point_mass_share},
                "medians": self.medians_, "means": self.means_, "stds": self.stds_,
                "has_missing": self.has_missing_, "categories": self.categories_, "values": self.values_}

    @classmethod
    def from_dict(cls, data: dict) -> TabularEncoder:
        """Rebuild a fitted encoder from `to_dict` output. One saved before value indicators
        existed has none: it encodes as it did when saved."""
        encoder = cls(**{"point_mass_share": None, **data["params"]})
        encoder.columns_ = list(encoder.numeric or []) + list(encoder.categorical or [])
        encoder.kinds_ = ({c: "numeric" for c in encoder.numeric or []}
                          | {c: "categorical" for c in encoder.categorical or []})
        encoder.medians_, encoder.means_, encoder.stds_ = data["medians"], data["means"], data["stds"]
        encoder.has_missing_, encoder.categories_ = data["has_missing"], data["categories"]
        encoder.values_ = data.get("values", {})
        encoder._build_layout()
        return encoder

    def _build_layout(self) -> None:
        """Name the output features and record which column each comes from."""
        self.column_slices_: dict[str, slice] = {}
        names: list[str] = []
        column_index: list[int] = []
        is_numeric: list[bool] = []
        for index, column in enumerate(self.columns_):
            start = len(names)
            if self.kinds_[column] == "numeric":
                names.append(column)
                is_numeric.append(True)
                if self.has_missing_[column]:
                    names.append(f"{column} (missing)")
                    is_numeric.append(False)
                indicated = self.values_.get(column, ())
                names.extend(f"{column} = {_number_text(value)}" for value in indicated)
                is_numeric.extend([False] * len(indicated))
            else:
                names.extend(f"{column} = {category}" for category in self.categories_[column])
                is_numeric.extend([False] * len(self.categories_[column]))
            column_index.extend([index] * (len(names) - start))
            self.column_slices_[column] = slice(start, len(names))
        self.feature_names_ = names
        self.feature_to_column_ = np.asarray(column_index, dtype=np.int64)
        self.numeric_features_ = np.asarray(is_numeric, dtype=bool)
        self.n_features_out_ = len(names)

    def _check_fitted(self) -> None:
        if not hasattr(self, "columns_"):
            raise RuntimeError("TabularEncoder is not fitted; call fit() first")


def check_encoded_rows(X: np.ndarray, n_features: int, model: str) -> np.ndarray:
    """Rows of the encoded matrix as a model reads them: C-contiguous float32 (no copy when they
    already are), (n, n_features); anything else is refused naming the model."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise InputError(f"Model '{model}' expects {n_features} features per row, got shape {X.shape}",
                         "Encode the rows with the study's TabularEncoder")
    return X


def _as_float(series: pd.Series, column: str) -> np.ndarray:
    values = np.array(pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan))
    values[~np.isfinite(values)] = np.nan
    return values


def _number_text(value: float) -> str:
    """15024.0 -> "15024", 0.5 -> "0.5": an indicator's name as the value reads in the table."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def _as_text(series: pd.Series) -> pd.Series:
    """Values as text (how categories are stored), missing values as "(missing)"; vectorised."""
    text = series.astype(object).astype(str)
    return text.where(series.notna().to_numpy(), MISSING)


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation that do not overflow for values near the float64 limit."""
    if values.size == 0:
        return 0.0, 1.0
    scale = float(np.max(np.abs(values))) or 1.0
    scaled = values / scale
    mean, std = float(np.mean(scaled)) * scale, float(np.std(scaled)) * scale
    return mean, (std if np.isfinite(std) and std > 0 else 1.0)
