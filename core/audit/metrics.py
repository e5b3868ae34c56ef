"""The fairness metrics as pure functions of confusion counts and scores, in fairlearn's style.

Conventions (fairlearn's; docs/metrics.md states every formula, and so does each docstring):

* A group's confusion counts are ``[TP, FP, TN, FN]`` in that order, on the last axis of an
  array. Every count metric is a pure function of those four numbers, vectorised over any
  leading axes, so the same code gives point estimates (shape ``(G, 4)``), bootstrap
  replicates (shape ``(B, G, 4)``) and the expected counts of a randomised decision rule
  (float counts, core.audit.thresholds).
* A metric that is undefined for a group (0/0: no positives for TPR/FNR, no negatives for
  FPR, no predicted positives for precision, one class for ROC AUC) is NaN in arrays and
  ``None`` in JSON (`num`), never 0. fairlearn (through scikit-learn) reports 0 for those;
  on groups where every metric is defined the numbers are identical.
* A gap is computed over a set of groups (`used`): the headline gaps over the groups large
  enough to read (`headline_groups`: at least `min_group_size` rows and, for TPR/FPR, at least
  `min_class_rows` rows of the class), the all-groups gaps over every group where the metric is
  defined (`used_groups`, fairlearn's set). A difference needs at least two such groups,
  otherwise it is undefined.
* Per-group rates get Wilson score intervals (`wilson_interval`), which stay inside (0, 1)
  and are not degenerate at a rate of 0 or 1 the way a percentile bootstrap of 15 rows is.

The expected calibration error is defined once, in core.learning.calibration (learning sits
below the audit, and temperature scaling reports the same ECE before and after); the audit
imports it from there.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any, Mapping

import numpy as np

from core.learning.calibration import weighted_calibration_error

# ------------------------------------------------------------------------- count metrics


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray,
                     n_groups: int) -> np.ndarray:
    """Confusion counts per group of 0/1 decisions, int64 of shape ``(n_groups, 4)``,
    columns ``[TP, FP, TN, FN]``; `codes[i]` is row i's group."""
    # cell: 0 = TP (y=1, p=1), 1 = FP (y=0, p=1), 2 = TN (y=0, p=0), 3 = FN (y=1, p=0)
    cell = np.where(y_pred == 1, 1 - y_true, 2 + y_true)
    flat = np.bincount(codes * 4 + cell, minlength=n_groups * 4)
    return flat.reshape(n_groups, 4)


def expected_confusion_counts(y_true: np.ndarray, p_positive: np.ndarray, codes: np.ndarray,
                              n_groups: int) -> np.ndarray:
    """Expected confusion counts per group when row i is decided positive with probability
    ``p_i``: ``TP = sum y p, FP = sum (1 - y) p, TN = sum (1 - y)(1 - p), FN = sum y (1 - p)``,
    float64 of shape ``(n_groups, 4)``. With 0/1 decisions these are `confusion_counts`."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(p_positive, dtype=np.float64)
    cells = (y * p, (1 - y) * p, (1 - y) * (1 - p), y * (1 - p))
    return np.stack([np.bincount(codes, weights=w, minlength=n_groups) for w in cells], axis=1)


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

    Counts may be floats (expected counts). Undefined values are NaN. Returns arrays of shape
    ``counts.shape[:-1]``, keyed by vocabulary.COUNT_METRICS.
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


#: Rows of the class a group needs for its TPR/FNR (positives) or FPR (negatives) to enter a
#: headline gap: a rate over a handful of rows swings by tens of points on one row.
MIN_CLASS_ROWS = 10


def rate_counts(counts: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(successes, trials) of every count metric that is one proportion, from confusion counts
    ``[..., 4]``: the numerators and denominators of `count_metrics` (balanced accuracy is a
    mean of two proportions, so it is not here)."""
    c = np.asarray(counts, dtype=np.float64)
    tp, fp, tn, fn = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    pos, neg, n = tp + fn, fp + tn, tp + fp + tn + fn
    return {"accuracy": (tp + tn, n), "tpr": (tp, pos), "fpr": (fp, neg), "fnr": (fn, pos),
            "precision": (tp, tp + fp), "selection_rate": (tp + fp, n)}


def wilson_interval(successes: np.ndarray, trials: np.ndarray,
                    confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion k / n (Wilson 1927), vectorised::

        centre = (p + z^2 / 2n) / (1 + z^2 / n)
        half   = z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)

    with p = k / n and z the normal quantile of (1 + confidence) / 2. At k = n (or k = 0) the
    interval is [n / (n + z^2), 1] (or [0, z^2 / (n + z^2)]): 15 rows all right give
    [0.80, 1.00], not the bootstrap's [1.00, 1.00]. NaN where n = 0.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        shrink = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / shrink
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / shrink
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


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


def score_metrics(y_true: np.ndarray, y_score: np.ndarray | None,
                  weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """ROC AUC and calibration error of one group (keyed by vocabulary.SCORE_METRICS); all
    NaN when there are no scores."""
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


def used_groups(metrics: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The groups whose metric enters the all-groups gaps, per metric a gap is taken over:
    those where it is defined in `metrics` (the point values: `count_metrics` of shape (G,));
    fairlearn's set of groups."""
    return {m: ~np.isnan(metrics[m]) for m in ("accuracy", "selection_rate", "tpr", "fpr")}


def headline_groups(counts: np.ndarray, *, min_group_size: int,
                    min_class_rows: int = MIN_CLASS_ROWS) -> dict[str, np.ndarray]:
    """The groups whose metric enters the headline gaps, from the point counts (G, 4): groups
    with at least `min_group_size` rows, and for TPR (FPR) at least `min_class_rows` truly
    positive (negative) rows, and never fewer than one (a rate must be defined).

    A gap is a max - min, so the smallest groups, whose rates are the noisiest, decide it; the
    headline leaves them out (they stay in the all-groups values and in the per-group rows).
    """
    c = np.asarray(counts)
    pos, neg = c[:, 0] + c[:, 3], c[:, 1] + c[:, 2]
    large = (pos + neg) >= max(int(min_group_size), 1)
    enough = max(int(min_class_rows), 1)
    return {"accuracy": large.copy(), "selection_rate": large.copy(), "tpr": large & (pos >= enough),
            "fpr": large & (neg >= enough)}


def parity_gaps(metrics: Mapping[str, np.ndarray],
                used: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The rate differences between groups, from `count_metrics` of ``[..., G]`` groups.

    With max/min over the groups in `used[m]` (bool, shape (G,): those where m is defined)::

        demographic_parity_difference = max - min selection_rate
        equal_opportunity_difference  = max - min tpr
        fpr_difference                = max - min fpr
        equalized_odds_difference     = max(tpr gap, fpr gap)   (undefined if either is)

    A difference needs two used groups; NaN where undefined.
    """
    tpr_gap = _over_used(metrics["tpr"], used["tpr"], np.ptp, 2)
    fpr_gap = _over_used(metrics["fpr"], used["fpr"], np.ptp, 2)
    return {
        "demographic_parity_difference": _over_used(metrics["selection_rate"],
                                                    used["selection_rate"], np.ptp, 2),
        "equalized_odds_difference": np.maximum(tpr_gap, fpr_gap),
        "equal_opportunity_difference": tpr_gap,
        "fpr_difference": fpr_gap,
    }


def gap_values(counts: np.ndarray, used: Mapping[str, np.ndarray],
               reference: int | None) -> dict[str, np.ndarray]:
    """Every gap of one partition (vocabulary.GAPS) from its confusion counts ``[..., G, 4]``.

    The rate differences are `parity_gaps`. With max/min over the used groups::

        accuracy_difference           = max - min accuracy
        worst_group_accuracy          = min accuracy
        mean_subgroup_gap             = mean_g |accuracy_g - overall accuracy|
        demographic_parity_ratio      = min / max selection_rate
        min_disparate_impact_ratio    = min_g selection_rate_g / selection_rate_reference

    The reference of the disparate-impact ratio is, with `reference` None, the used group with
    the highest selection rate (29 CFR 1607.4(D)), taken anew in every bootstrap replicate, so
    the lowest ratio is then min / max over the used groups; with an index, that fixed group.
    Differences and ratios need two used groups; NaN where undefined.
    """
    m = count_metrics(counts)
    c = np.asarray(counts, dtype=np.float64)
    overall_accuracy = (c[..., 0] + c[..., 2]).sum(axis=-1) / c.sum(axis=(-1, -2))
    sel, acc = m["selection_rate"], m["accuracy"]
    parity = parity_gaps(m, used)
    sel_max = _over_used(sel, used["selection_rate"], np.max, 2)
    sel_min = _over_used(sel, used["selection_rate"], np.min, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        dp_ratio = np.where(sel_max > 0, sel_min / sel_max, np.nan)
        if reference is None:
            lowest_di = dp_ratio
        else:
            ref = sel[..., reference]
            di = np.where(ref[..., None] > 0, sel / ref[..., None], np.nan)
            lowest_di = _over_used(di, used["selection_rate"], np.min, 2)
    return {
        "demographic_parity_difference": parity["demographic_parity_difference"],
        "equalized_odds_difference": parity["equalized_odds_difference"],
        "equal_opportunity_difference": parity["equal_opportunity_difference"],
        "accuracy_difference": _over_used(acc, used["accuracy"], np.ptp, 2),
        "worst_group_accuracy": _over_used(acc, used["accuracy"], np.min, 1),
        "mean_subgroup_gap": _over_used(
            np.abs(acc - overall_accuracy[..., None]), used["accuracy"], np.mean, 1
        ),
        "fpr_difference": parity["fpr_difference"],
        "demographic_parity_ratio": dp_ratio,
        "min_disparate_impact_ratio": lowest_di,
    }


def num(x: Any) -> float | None:
    """A metric's JSON value: a Python float, or None where it is undefined (NaN)."""
    x = float(x)
    return None if np.isnan(x) else x
