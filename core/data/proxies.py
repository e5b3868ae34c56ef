"""Features that stand in for a sensitive attribute (proxies).

Dropping a sensitive attribute does not blind a model if another feature carries the same
information (in Adult, `relationship = Husband` says `sex = Male`). For every pair of a
sensitive attribute and a feature this module measures their association with Cramér's V,

    V = sqrt( chi2 / (n * (min(r, c) - 1)) )

where chi2 is Pearson's chi-squared statistic of the r x c contingency table of the two
columns and n its total. Numeric features are first cut into `n_bins` quantile bins, so
every feature is measured on the same 0..1 scale (0: independent, 1: one determines the
other). Next to it: the normalised mutual information (arithmetic normalisation, as in
scikit-learn) of the same table. Strength labels: V >= 0.5 strong, >= 0.3 moderate, else
weak; only moderate and strong associations are reported as proxies.
"""

from __future__ import annotations

from collections.abc import Sequence

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score


MODERATE, STRONG = 0.3, 0.5


@dataclass(frozen=True)
class ProxyFinding:
    """How strongly one feature is associated with one sensitive attribute."""

    attribute: str
    feature: str
    cramers_v: float
    mutual_information: float
    strength: str

    def to_dict(self) -> dict:
        return {"attribute": self.attribute, "feature": self.feature, "cramers_v": self.cramers_v,
                "mutual_information": self.mutual_information, "strength": self.strength}


def cramers_v(a: pd.Series | np.ndarray, b: pd.Series | np.ndarray) -> float:
    """Cramér's V of two categorical columns (formula in the module docstring); 0 if either is constant."""
    return _cramers_v_codes(_codes(a), _codes(b))


def _codes(values: pd.Series | np.ndarray) -> np.ndarray:
    """Integer category codes, missing values as a category of their own."""
    codes, _ = pd.factorize(pd.Series(values), use_na_sentinel=False)
    return codes.astype(np.int64)


def _cramers_v_codes(a: np.ndarray, b: np.ndarray) -> float:
    r, c = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a * c + b, minlength=r * c).reshape(r, c).astype(float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, c = table.shape
    if min(r, c) < 2:
        return 0.0
    n = table.sum()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    return float(np.sqrt(chi2 / (n * (min(r, c) - 1))))


def as_categories(series: pd.Series, n_bins: int = 10) -> np.ndarray:
    """Integer category codes of a column: numeric columns in quantile bins, missing as its own code."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series) and series.nunique() > n_bins:
        binned = pd.qcut(series, q=n_bins, duplicates="drop", labels=False)
        return np.where(series.isna(), -1, binned.fillna(-1)).astype(np.int64) + 1
    return _codes(series)


def find_proxies(features: pd.DataFrame, groups: pd.DataFrame, *, columns: Sequence[str] | None = None,
                 n_bins: int = 10, threshold: float = MODERATE) -> list[ProxyFinding]:
    """Every (attribute, feature) pair with Cramér's V >= `threshold`, strongest first (ties in
    attribute, then feature order).

    `groups` holds the sensitive attributes as audited (one text column each); a feature
    with the same name as an attribute is that attribute itself and is skipped. `columns` (default
    every column of `features`) are the features looked at, one at a time: `features` may be a
    table read one column at a time (core.data.columns).
    """
    attribute_codes = {attribute: _codes(groups[attribute]) for attribute in groups.columns}
    found = []
    for feature_position, feature in enumerate(features.columns if columns is None else columns):
        values = as_categories(features[feature], n_bins)
        for attribute_position, (attribute, codes) in enumerate(attribute_codes.items()):
            if feature == attribute:
                continue
            v = _cramers_v_codes(codes, values)
            if v >= threshold:
                nmi = float(normalized_mutual_info_score(codes, values))
                strength = "strong" if v >= STRONG else "moderate"
                found.append(((-round(v, 4), attribute_position, feature_position),
                              ProxyFinding(attribute, feature, round(v, 4), round(nmi, 4), strength)))
    return [finding for _, finding in sorted(found, key=lambda pair: pair[0])]
