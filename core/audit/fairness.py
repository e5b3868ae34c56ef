"""Per-group fairness metrics, gaps between groups, and the `audit_fairness` entry point.

Conventions (fairlearn's, see docs/metrics.md for every formula):

* A group's confusion counts are ``[TP, FP, TN, FN]`` in that order, on the last axis of an
  integer array. Every count metric is a pure function of those four numbers, vectorised
  over any leading axes, so the same code gives point estimates (shape ``(G, 4)``) and
  bootstrap replicates (shape ``(B, G, 4)``).
* A metric that is undefined for a group (0/0: no positives for TPR/FNR, no negatives for
  FPR, no predicted positives for precision, one class for ROC AUC) is NaN in arrays and
  ``None`` in the JSON-able output, never 0. fairlearn (through scikit-learn) reports 0 for
  those; on groups where every metric is defined the numbers are identical.
* A gap is computed over the groups for which the metric is defined; groups where it is
  undefined are left out and listed under ``excluded_groups``. A difference needs at least
  two such groups, otherwise it is undefined.

Partitions: one per sensitive attribute, one per pair of attributes, and one for all of them
together (when there are three or more). An intersection is keyed by the attribute names
joined with " & " ("sex & race") and its groups by the values joined the same way
("Female & Black").
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.errors import InputError

SEPARATOR = " & "

#: Metrics computed from the confusion counts alone.
COUNT_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "tpr",
    "fpr",
    "fnr",
    "precision",
    "selection_rate",
)
#: Metrics that need the scores.
SCORE_METRICS = ("roc_auc", "calibration_error")
GROUP_METRICS = COUNT_METRICS + SCORE_METRICS
OVERALL_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "calibration_error",
                   "tpr", "fpr", "selection_rate")

#: Numeric gaps per partition; the first six are the report.json contract.
GAPS = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "accuracy_difference",
    "worst_group_accuracy",
    "mean_subgroup_gap",
    "fpr_difference",
    "demographic_parity_ratio",
    "min_disparate_impact_ratio",
)
#: Number of equal-width bins of the expected calibration error.
N_BINS = 10


# ----------------------------------------------------------------------------- partitions


@dataclass(frozen=True)
class Partition:
    """The rows split by one attribute or one intersection of attributes.

    `codes[i]` is the index into `labels` of row i's group; groups are sorted by their
    tuple of values (as fairlearn's MetricFrame sorts `by_group`); only groups that occur
    are listed.
    """

    key: str
    attributes: tuple[str, ...]
    labels: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]
    codes: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.labels)


def check_sensitive(sensitive: Any, n: int) -> pd.DataFrame:
    """Return `sensitive` as a DataFrame of strings; raise InputError if it cannot be one."""
    if isinstance(sensitive, pd.Series):
        sensitive = sensitive.to_frame()
    if not isinstance(sensitive, pd.DataFrame):
        raise InputError(
            f"sensitive attributes must be a pandas DataFrame, got {type(sensitive).__name__}",
            "pass one column per sensitive attribute",
        )
    if sensitive.shape[1] == 0:
        raise InputError("no sensitive attribute given", "pass at least one column")
    if len(sensitive) != n:
        raise InputError(
            f"sensitive attributes have {len(sensitive)} rows but the predictions have {n}",
            "pass them for the same rows, in the same order",
        )
    names = [str(c) for c in sensitive.columns]
    if len(set(names)) != len(names):
        raise InputError(f"duplicate sensitive attribute names: {names}", "rename them")
    for name, column in zip(names, sensitive.columns):
        missing = int(sensitive[column].isna().sum())
        if missing:
            raise InputError(
                f"sensitive attribute '{name}' has {missing} missing values",
                "fill them with an explicit label such as 'unknown'",
            )
    frame = sensitive.astype(str)
    frame.columns = names
    return frame.reset_index(drop=True)


def partitions(sensitive: pd.DataFrame) -> list[Partition]:
    """Every attribute, every pair of attributes, and all attributes together (if >= 3)."""
    names = list(sensitive.columns)
    subsets = [(a,) for a in names] + list(combinations(names, 2))
    if len(names) >= 3:
        subsets.append(tuple(names))
    levels, inverse = {}, {}
    for name in names:
        levels[name], inverse[name] = np.unique(sensitive[name].to_numpy(dtype=str),
                                                return_inverse=True)
    result = []
    for attrs in subsets:
        # Mixed-radix code of the value tuple: sorting it sorts groups by their values.
        combined = np.zeros(len(sensitive), dtype=np.int64)
        for name in attrs:
            combined = combined * len(levels[name]) + inverse[name]
        present, codes = np.unique(combined, return_inverse=True)
        values = []
        for code in present:
            digits = []
            for name in reversed(attrs):
                code, digit = divmod(int(code), len(levels[name]))
                digits.append(str(levels[name][digit]))
            values.append(tuple(reversed(digits)))
        labels = tuple(SEPARATOR.join(v) for v in values)
        result.append(Partition(SEPARATOR.join(attrs), tuple(attrs), labels, tuple(values),
                                codes.astype(np.int64).ravel()))
    return result


# ------------------------------------------------------------------------- count metrics


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray,
                     n_groups: int) -> np.ndarray:
    """Confusion counts per group, shape ``(n_groups, 4)``, columns ``[TP, FP, TN, FN]``."""
    # cell: 0 = TP (y=1, p=1), 1 = FP (y=0, p=1), 2 = TN (y=0, p=0), 3 = FN (y=1, p=0)
    cell = np.where(y_pred == 1, 1 - y_true, 2 + y_true)
    flat = np.bincount(codes * 4 + cell, minlength=n_groups * 4)
    return flat.reshape(n_groups, 4)


def count_metrics(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every count metric from confusion counts ``[..., 4] = [TP, FP, TN, FN]``.

    With P = TP + FN, N = FP + TN, n = P + N::

        accuracy          = (TP + TN) / n
        tpr               = TP / P            (undefined if P = 0)
        fnr               = FN / P            (undefined if P = 0)
        fpr               = FP / N            (undefined if N = 0)
        precision         = TP / (TP + FP)    (undefined if TP + FP = 0)
        selection_rate    = (TP + FP) / n
        balanced_accuracy = mean of TPR and TNR = TN / N over the classes present in the
                            group (scikit-learn's definition: TPR alone if N = 0, TNR alone
                            if P = 0)

    Undefined values are NaN. Returns arrays of shape ``counts.shape[:-1]``.
    """
    c = np.asarray(counts, dtype=np.float64)
    tp, fp, tn, fn = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    pos, neg = tp + fn, fp + tn
    n = pos + neg
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / pos
        tnr = tn / neg
        out = {
            "accuracy": (tp + tn) / n,
            "balanced_accuracy": np.where(
                (pos > 0) & (neg > 0), (tpr + tnr) / 2, np.where(pos > 0, tpr, tnr)
            ),
            "tpr": tpr,
            "fpr": fp / neg,
            "fnr": fn / pos,
            "precision": tp / (tp + fp),
            "selection_rate": (tp + fp) / n,
        }
    return out


# ------------------------------------------------------------------------- score metrics


def _as_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones((1, n))
    w = np.asarray(weights, dtype=np.float64)
    return w[None, :] if w.ndim == 1 else w


def auc_layout(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort once for `auc_from_layout`: (negatives by score, positives, lt, le) where
    ``lt[k]`` / ``le[k]`` count the negatives scored below / at most positive k's score."""
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    neg, pos = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    neg = neg[np.argsort(s[neg], kind="stable")]
    lt = np.searchsorted(s[neg], s[pos], side="left")
    le = np.searchsorted(s[neg], s[pos], side="right")
    return neg, pos, lt, le


def auc_from_layout(w_neg: np.ndarray, w_pos: np.ndarray, lt: np.ndarray,
                    le: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC from weights of the sorted negatives (B, n_neg) and of the
    positives (B, n_pos): ``sum_k w_k (C[lt_k] + C[le_k]) / 2 / (W_pos W_neg)`` with C the
    cumulative negative weight (C[0] = 0), so a tie counts one half."""
    b = w_neg.shape[0]
    cum = np.zeros((b, w_neg.shape[1] + 1), dtype=w_neg.dtype)
    np.cumsum(w_neg, axis=1, out=cum[:, 1:])
    numerator = ((cum[:, lt] + cum[:, le]) * w_pos).sum(axis=1) / 2
    denominator = w_pos.sum(axis=1) * cum[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def weighted_roc_auc(y_true: np.ndarray, y_score: np.ndarray,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """ROC AUC as a weighted Mann-Whitney statistic, for many weight vectors at once.

    ``AUC = sum_{i pos, j neg} w_i w_j ([s_i > s_j] + 0.5 [s_i = s_j]) / (W_pos W_neg)``,
    which with unit weights is scikit-learn's ``roc_auc_score`` (ties count one half) and
    with integer weights is the AUC of the data set that repeats row i w_i times.
    The rows are sorted once (`auc_layout`); each weight vector then costs one cumulative
    sum over the negatives and two look-ups per positive.

    `weights` is None (unit weights), shape (n,) or (B, n). Returns shape (B,) (B = 1 for
    None or 1-D weights); NaN where a weight vector gives no positive or no negative weight.
    """
    w = _as_weights(weights, len(y_true))
    neg, pos, lt, le = auc_layout(y_true, y_score)
    return auc_from_layout(w[:, neg], w[:, pos], lt, le)


def calibration_bins(y_score: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Bin index of each score: ``min(floor(n_bins * s), n_bins - 1)``; bins are
    ``[0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]`` for 10 bins."""
    s = np.asarray(y_score, dtype=np.float64)
    return np.minimum(np.floor(s * n_bins), n_bins - 1).astype(np.int64)


def calibration_residuals(y_true: np.ndarray, y_score: np.ndarray,
                          n_bins: int = N_BINS) -> np.ndarray:
    """``R[i, b] = (y_i - s_i) [bin_i = b]``, shape (n, n_bins)."""
    y = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(y_score, dtype=np.float64)
    residual = np.zeros((len(y), n_bins))
    residual[np.arange(len(y)), calibration_bins(s, n_bins)] = y - s
    return residual


def ece_from_residuals(weights: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """``sum_b |(W @ R)[:, b]| / sum_i W[:, i]`` for weights (B, n); NaN where W sums to 0."""
    w = np.asarray(weights, dtype=np.float64)
    per_bin = w @ residual
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, np.abs(per_bin).sum(axis=1) / total, np.nan)


def weighted_calibration_error(y_true: np.ndarray, y_score: np.ndarray,
                               weights: np.ndarray | None = None,
                               n_bins: int = N_BINS) -> np.ndarray:
    """Expected calibration error with equal-width bins, for many weight vectors at once.

    ``ECE = sum_b (n_b / n) |mean_{i in b} y_i - mean_{i in b} s_i|
          = (1 / n) sum_b |sum_{i in b} (y_i - s_i)|``
    over the bins of `calibration_bins` (empty bins contribute 0). With weights, n_b and the
    sums are weighted, so integer weights give the ECE of the repeated-row data set; the
    bin sums of all weight vectors are one matrix product ``W @ R`` with
    ``R[i, b] = (y_i - s_i) [bin_i = b]``.

    Returns shape (B,) as `weighted_roc_auc`; NaN where a weight vector sums to 0.
    """
    w = _as_weights(weights, len(y_true))
    return ece_from_residuals(w, calibration_residuals(y_true, y_score, n_bins))


def score_metrics(y_true: np.ndarray, y_score: np.ndarray | None,
                  weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """ROC AUC and calibration error of one group; all NaN when there are no scores."""
    if y_score is None:
        b = 1 if weights is None or np.ndim(weights) == 1 else np.shape(weights)[0]
        return {"roc_auc": np.full(b, np.nan), "calibration_error": np.full(b, np.nan)}
    return {
        "roc_auc": weighted_roc_auc(y_true, y_score, weights),
        "calibration_error": weighted_calibration_error(y_true, y_score, weights),
    }


# ----------------------------------------------------------------------------------- gaps


def _over_used(values: np.ndarray, used: np.ndarray, reducer: Any, minimum: int) -> np.ndarray:
    """`reducer` over the groups in `used` (last axis); NaN if fewer than `minimum` groups.

    In bootstrap replicates a NaN in a used group propagates, so a replicate whose group set
    differs from the point estimate's is undefined rather than silently a different gap.
    """
    if used.sum() < minimum:
        return np.full(values.shape[:-1], np.nan)
    return reducer(values[..., used], axis=-1)


def gap_values(counts: np.ndarray, used: Mapping[str, np.ndarray],
               reference: int) -> dict[str, np.ndarray]:
    """Every gap of one partition from its confusion counts ``[..., G, 4]``.

    `used[m]` (bool, shape (G,)) marks the groups whose metric m enters the gaps (those
    where it is defined in the point estimate); `reference` is the index of the reference
    group of the disparate-impact ratio. With max/min over the used groups::

        demographic_parity_difference = max - min selection_rate
        equal_opportunity_difference  = max - min tpr
        fpr_difference                = max - min fpr
        equalized_odds_difference     = max(tpr gap, fpr gap)
        accuracy_difference           = max - min accuracy
        worst_group_accuracy          = min accuracy
        mean_subgroup_gap             = mean_g |accuracy_g - overall accuracy|
        demographic_parity_ratio      = min / max selection_rate
        min_disparate_impact_ratio    = min_g selection_rate_g / selection_rate_reference

    Differences and ratios need two used groups; NaN where undefined.
    """
    m = count_metrics(counts)
    c = np.asarray(counts, dtype=np.float64)
    overall_accuracy = (c[..., 0] + c[..., 2]).sum(axis=-1) / c.sum(axis=(-1, -2))
    sel, acc = m["selection_rate"], m["accuracy"]
    tpr_gap = _over_used(m["tpr"], used["tpr"], np.ptp, 2)
    fpr_gap = _over_used(m["fpr"], used["fpr"], np.ptp, 2)
    sel_max = _over_used(sel, used["selection_rate"], np.max, 2)
    ref = sel[..., reference]
    with np.errstate(divide="ignore", invalid="ignore"):
        dp_ratio = np.where(sel_max > 0, _over_used(sel, used["selection_rate"], np.min, 2)
                            / sel_max, np.nan)
        di = np.where(ref[..., None] > 0, sel / ref[..., None], np.nan)
    return {
        "demographic_parity_difference": _over_used(sel, used["selection_rate"], np.ptp, 2),
        "equalized_odds_difference": np.maximum(tpr_gap, fpr_gap),
        "equal_opportunity_difference": tpr_gap,
        "accuracy_difference": _over_used(acc, used["accuracy"], np.ptp, 2),
        "worst_group_accuracy": _over_used(acc, used["accuracy"], np.min, 1),
        "mean_subgroup_gap": _over_used(
            np.abs(acc - overall_accuracy[..., None]), used["accuracy"], np.mean, 1
        ),
        "fpr_difference": fpr_gap,
        "demographic_parity_ratio": dp_ratio,
        "min_disparate_impact_ratio": _over_used(di, used["selection_rate"], np.min, 2),
    }


def _extremes(values: np.ndarray, used: np.ndarray, labels: tuple[str, ...],
              metric: str) -> dict[str, Any]:
    idx = np.flatnonzero(used)
    if len(idx) == 0:
        return {"metric": metric, "max_group": None, "min_group": None}
    v = values[idx]
    # first maximum, last minimum: two different groups even when all values tie
    last_min = len(v) - 1 - int(np.argmin(v[::-1]))
    return {"metric": metric, "max_group": labels[idx[int(np.argmax(v))]],
            "min_group": labels[idx[last_min]]}


def gap_extremes(metrics: dict[str, np.ndarray], used: Mapping[str, np.ndarray],
                 labels: tuple[str, ...], overall_accuracy: float, tpr_gap: float,
                 fpr_gap: float) -> dict[str, dict[str, Any]]:
    """Which groups sit at the extremes of each gap ("between which groups")."""
    eo = "fpr" if (np.isnan(tpr_gap) or fpr_gap > tpr_gap) else "tpr"
    distance = np.abs(metrics["accuracy"] - overall_accuracy)
    return {
        "demographic_parity_difference": _extremes(metrics["selection_rate"],
                                                   used["selection_rate"], labels,
                                                   "selection_rate"),
        "equalized_odds_difference": _extremes(metrics[eo], used[eo], labels, eo),
        "equal_opportunity_difference": _extremes(metrics["tpr"], used["tpr"], labels, "tpr"),
        "fpr_difference": _extremes(metrics["fpr"], used["fpr"], labels, "fpr"),
        "accuracy_difference": _extremes(metrics["accuracy"], used["accuracy"], labels,
                                         "accuracy"),
        "worst_group_accuracy": {
            "metric": "accuracy",
            "min_group": _extremes(metrics["accuracy"], used["accuracy"], labels,
                                   "accuracy")["min_group"],
        },
        "mean_subgroup_gap": {
            "metric": "accuracy",
            "farthest_group": _extremes(distance, used["accuracy"], labels,
                                        "accuracy")["max_group"],
        },
        "demographic_parity_ratio": _extremes(metrics["selection_rate"],
                                              used["selection_rate"], labels,
                                              "selection_rate"),
    }


# ------------------------------------------------------------------------------- helpers


def num(x: Any) -> float | None:
    """A JSON-able float: NaN becomes None."""
    x = float(x)
    return None if np.isnan(x) else x


def check_predictions(y_true: Any, y_pred: Any,
                      y_score: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate the label, prediction and score arrays; raise InputError on bad input."""
    arrays = []
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        a = np.asarray(values).ravel()
        if a.dtype == bool:
            a = a.astype(np.int64)
        if not np.issubdtype(a.dtype, np.number) or not np.isin(a, (0, 1)).all():
            raise InputError(f"{name} must contain only 0 and 1",
                             "encode the positive label as 1 and the rest as 0")
        arrays.append(a.astype(np.int64))
    y, p = arrays
    if len(y) == 0:
        raise InputError("no rows to audit", "pass at least one test row")
    if len(p) != len(y):
        raise InputError(f"y_pred has {len(p)} rows but y_true has {len(y)}",
                         "pass predictions for the same rows")
    s = None
    if y_score is not None:
        try:
            s = np.asarray(y_score, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise InputError("y_score must be numeric",
                             "pass the predicted probability of the positive label") from None
        if len(s) != len(y):
            raise InputError(f"y_score has {len(s)} rows but y_true has {len(y)}",
                             "pass scores for the same rows")
        if not np.all(np.isfinite(s)) or s.min() < 0 or s.max() > 1:
            raise InputError("y_score must be probabilities in [0, 1]",
                             "pass the predicted probability of the positive label")
    return y, p, s


def reference_index(partition: Partition, counts: np.ndarray,
                    reference_groups: Mapping[str, str] | None) -> int:
    """Index of the reference group: the one named in `reference_groups[key]`, else the
    largest group (the first in sort order on ties)."""
    chosen = (reference_groups or {}).get(partition.key)
    if chosen is None:
        return int(np.argmax(counts.sum(axis=1)))
    if chosen not in partition.labels:
        raise InputError(
            f"reference group '{chosen}' not found for '{partition.key}'; "
            f"groups are: {', '.join(partition.labels)}",
            "pick one of the listed groups",
        )
    return partition.labels.index(chosen)


# ---------------------------------------------------------------------------- entry point


def audit_fairness(y_true: Any, y_pred: Any, y_score: Any, sensitive: pd.DataFrame, *,
                   n_boot: int = 1000, confidence: float = 0.95,
                   reference_groups: Mapping[str, str] | None = None,
                   min_group_size: int = 30, random_state: int | None = 0,
                   stratify: bool = True) -> dict[str, Any]:
    """Per-group metrics, gaps and their percentile bootstrap intervals, as report.json wants.

    Returns ``{"overall": {...}, "groups": {key: [row, ...]}, "gaps": {key: {...}},
    "bootstrap": {...}}``; the shapes are documented in docs/metrics.md. `reference_groups`
    maps a partition key to the reference group of its disparate-impact ratio (default: the
    largest group). Groups with fewer than `min_group_size` rows have ``"small": true``.
    `n_boot = 0` skips the bootstrap (every interval is None).
    """
    # bootstrap.py builds on this module's formulas, so it is imported here, not at the top.
    from core.audit import bootstrap

    y, p, s = check_predictions(y_true, y_pred, y_score)
    frame = check_sensitive(sensitive, len(y))
    if not isinstance(min_group_size, (int, np.integer)) or min_group_size < 1:
        raise InputError(f"min_group_size must be a positive integer, got {min_group_size}",
                         "the default is 30")
    bootstrap.check_settings(n_boot, confidence)
    parts = partitions(frame)
    known = {part.key for part in parts}
    unknown = sorted(set(reference_groups or {}) - known)
    if unknown:
        raise InputError(f"reference_groups names unknown attributes: {unknown}",
                         f"use one of: {', '.join(sorted(known))}")

    overall = bootstrap.overall_summary(y, p, s, n_boot=n_boot, confidence=confidence,
                                        random_state=random_state)
    groups: dict[str, list[dict[str, Any]]] = {}
    gaps: dict[str, dict[str, Any]] = {}
    for part in parts:
        rows, gap = bootstrap.partition_summary(
            y, p, s, part, n_boot=n_boot, confidence=confidence,
            reference_groups=reference_groups, min_group_size=min_group_size,
            random_state=random_state, stratify=stratify,
        )
        groups[part.key] = rows
        gaps[part.key] = gap
    return {
        "overall": overall,
        "groups": groups,
        "gaps": gaps,
        "bootstrap": {"method": "percentile", "n_boot": int(n_boot),
                      "confidence": float(confidence), "stratified": bool(stratify),
                      "random_state": random_state, "min_group_size": int(min_group_size)},
    }
