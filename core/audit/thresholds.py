"""Threshold what-ifs: per-group decision thresholds, fitted to a fairness constraint or set by hand.

A what-if answers "if we moved each group's threshold, what would the per-group rates, the
gaps and the accuracy become?". Inputs are plain arrays: `y_score` (probability of the
positive label), `y_true` 0/1 and one group label per row (one attribute, or an
intersection joined with vocabulary.INTERSECTION). Rows come as a triple
`(y_score, y_true, groups)`.

Fitting policy: thresholds are fitted on `fit_on` rows (the validation split) and judged on
`evaluate_on` rows (the test split). Judged on the rows they were fitted on, they look
better than they will be in use; that case is allowed but labelled in the result.

Every result compares against the default rule, y_pred = 1[score >= DECISION_THRESHOLD]
(0.5) for all groups, on the same evaluation rows. Per-group rates and gaps are the audit's
(core.audit.metrics). Decisions and reasons: docs/representation.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin

from core.audit.metrics import (
    count_metrics,
    expected_confusion_counts,
    num,
    parity_gaps,
    used_groups,
)
from core.errors import InputError
from core.vocabulary import DECISION_THRESHOLD, INTERSECTION

#: The per-group rates and the gaps a what-if reports.
WHATIF_METRICS = ("accuracy", "tpr", "fpr", "selection_rate")
WHATIF_GAPS = ("demographic_parity_difference", "equalized_odds_difference",
               "equal_opportunity_difference")

#: Names accepted for `constraint`, mapped to fairlearn's names.
CONSTRAINTS = {
    "demographic_parity": "demographic_parity",
    "equal_opportunity": "true_positive_rate_parity",
    "true_positive_rate_parity": "true_positive_rate_parity",
    "equalized_odds": "equalized_odds",
}
OBJECTIVES = ("accuracy_score", "balanced_accuracy_score")


# ----------------------------------------------------------------------------- inputs


def _rows(rows: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a `(y_score, y_true, groups)` triple; return float64, int64, object arrays."""
    if not isinstance(rows, tuple | list) or len(rows) != 3:
        raise InputError(
            f"{name} must be a triple (y_score, y_true, groups)",
            "pass the validation (fit_on) or test (evaluate_on) rows as three arrays",
        )
    y_score = np.asarray(rows[0], dtype=np.float64)
    n = y_score.shape[0] if y_score.ndim == 1 else -1
    if y_score.ndim != 1 or n == 0 or not np.all(np.isfinite(y_score)):
        raise InputError(f"{name}: y_score must be a non-empty 1-D array of finite numbers")
    y_true = _labels(rows[1], f"{name}: y_true", n)
    groups = _groups(rows[2], f"{name}: groups", n)
    return y_score, y_true, groups


def _labels(values: Any, name: str, n: int) -> np.ndarray:
    labels = np.asarray(values)
    if labels.shape != (n,):
        raise InputError(f"{name} must have shape ({n},), got {labels.shape}", "one per row")
    if not np.isin(labels, (0, 1)).all():
        raise InputError(f"{name} must contain only 0 and 1", "encode the positive label as 1")
    return labels.astype(np.int64)


def _groups(values: Any, name: str, n: int) -> np.ndarray:
    groups = np.asarray(values, dtype=object)
    if groups.shape != (n,):
        raise InputError(
            f"{name} must be a 1-D array of {n} group labels, got shape {groups.shape}",
            f"pass one attribute, or an intersection joined with '{INTERSECTION}'",
        )
    return pd.Series(groups).astype(str).to_numpy(dtype=object)


# ----------------------------------------------------------------------------- metrics


def _summary(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Overall accuracy, per-group n, accuracy, TPR, FPR and selection rate (sorted by group)
    and the WHATIF_GAPS, with the audit's formulas (core.audit.metrics).

    `y_pred` may hold probabilities of a positive decision, which gives the expected value of
    each count (`expected_confusion_counts`). A rate with a zero denominator is None, and so
    is a gap over fewer than two groups where its rate is defined.
    """
    y_pred = np.asarray(y_pred, dtype=np.float64)
    names, codes = np.unique(groups, return_inverse=True)
    counts = expected_confusion_counts(y_true, y_pred, codes, len(names))
    metrics = count_metrics(counts)
    gaps = parity_gaps(metrics, used_groups(metrics))
    sizes = np.bincount(codes, minlength=len(names))
    records = [{"group": str(name), "n": int(sizes[g]),
                **{m: num(metrics[m][g]) for m in WHATIF_METRICS}}
               for g, name in enumerate(names)]
    accuracy = float(count_metrics(counts.sum(axis=0))["accuracy"])
    return {"accuracy": accuracy, "groups": records, "gaps": {k: num(gaps[k]) for k in WHATIF_GAPS}}


def _result(
    *,
    y_pred: np.ndarray,
    p_positive: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    rules: dict[str, dict],
    **extra: Any,
) -> dict[str, Any]:
    y_score, y_true, groups = rows
    baseline = _summary(y_true, (y_score >= DECISION_THRESHOLD).astype(np.float64), groups)
    realised = _summary(y_true, y_pred, groups)
    return {
        **extra,
        "rules": rules,
        "randomized": bool(np.any((p_positive > 0) & (p_positive < 1))),
        **realised,
        "expected": _summary(y_true, p_positive, groups),
        "baseline": baseline,
        "accuracy_cost": realised["accuracy"] - baseline["accuracy"],
        "y_pred": y_pred.astype(np.int64),
        "p_positive": p_positive,
    }


# ----------------------------------------------------------------------------- manual


def apply_thresholds(
    y_score: Any,
    groups: Any,
    thresholds: Mapping[Any, float],
    *,
    default: float | None = None,
) -> np.ndarray:
    """Decisions with one threshold per group: y_pred_i = 1[score_i >= t_{group_i}].

    A group missing from `thresholds` uses `default`; with `default=None` (the default) a
    missing group is an InputError, so a typo in a group name cannot pass unnoticed.
    Returns int64 0/1 of the same length as `y_score`.
    """
    scores = np.asarray(y_score, dtype=np.float64)
    if scores.ndim != 1:
        raise InputError(f"y_score must be 1-D, got shape {scores.shape}", "one score per row")
    labels = _groups(groups, "groups", scores.shape[0])
    table = {str(g): float(t) for g, t in thresholds.items()}
    names, codes = np.unique(labels, return_inverse=True)
    missing = [str(g) for g in names if g not in table]
    if missing and default is None:
        raise InputError(
            f"no threshold for group(s) {', '.join(missing)}; thresholds are given for "
            f"{', '.join(sorted(table)) or 'no group'}",
            "give every group a threshold, or pass default=",
        )
    per_group = np.array([table.get(str(g), default) for g in names], dtype=np.float64)
    return (scores >= per_group[codes]).astype(np.int64)


def evaluate_thresholds(
    thresholds: Mapping[Any, float],
    *,
    evaluate_on: Any,
    default: float | None = None,
) -> dict[str, Any]:
    """Per-group metrics, gaps and accuracy cost of hand-set per-group thresholds.

    `evaluate_on` = (y_score, y_true, groups). Decisions are `apply_thresholds(...)`.
    Returns the same shape as `optimize_thresholds` (see there), with constraint "manual";
    the rule is deterministic, so `randomized` is False and `expected` equals the
    realised numbers.
    """
    rows = _rows(evaluate_on, "evaluate_on")
    y_pred = apply_thresholds(rows[0], rows[2], thresholds, default=default)
    table = {str(g): float(t) for g, t in thresholds.items()}
    rules = {
        str(g): _rule([(">=", table.get(str(g), default), 1.0)])
        for g in np.unique(rows[2])
    }
    return _result(
        y_pred=y_pred,
        p_positive=y_pred.astype(np.float64),
        rows=rows,
        rules=rules,
        constraint="manual",
        objective=None,
        evaluated_on="evaluate_on rows",
        n_fit=0,
        random_state=None,
    )


# ----------------------------------------------------------------------------- fitted


class _GivenScores(ClassifierMixin, BaseEstimator):
    """A 'model' whose score for a row is the row's single feature: the given y_score.

    ThresholdOptimizer post-processes an estimator; the audit has scores, not the model,
    so the scores travel as a one-column X and come back out of `decision_function`.
    """

    def fit(self, X: Any, y: Any = None) -> _GivenScores:
        self.fitted_ = True
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)[:, 0]


def _rule(parts: list[tuple[str, float | None, float]], constant: tuple | None = None) -> dict:
    """JSON-friendly description of a (possibly randomised) per-group decision rule."""
    return {
        "thresholds": [
            {"operator": op, "threshold": t, "probability": float(p)}
            for op, t, p in parts
            if p > 0
        ],
        # With probability `p_constant` the rule is replaced by a coin that says positive with
        # probability `constant_positive_rate` (fairlearn's p_ignore, equalized odds only).
        "p_constant": float(constant[0]) if constant else 0.0,
        "constant_positive_rate": float(constant[1]) if constant else None,
    }


def _p_positive(interpolation: Mapping, scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Probability of a positive decision per row, from fairlearn's interpolation_dict.

    p = p0 * op0(s) + p1 * op1(s), then p = p_ignore * c + (1 - p_ignore) * p when present;
    this is the formula of fairlearn's InterpolatedThresholder, written out so the result
    can state it.
    """
    p = np.zeros(scores.shape[0])
    for group, rule in interpolation.items():
        rows = groups == group
        s = scores[rows]
        value = rule.p0 * rule.operation0(s) + rule.p1 * rule.operation1(s)
        if "p_ignore" in rule:
            value = rule.p_ignore * rule.prediction_constant + (1 - rule.p_ignore) * value
        p[rows] = value
    return p


def optimize_thresholds(
    constraint: str = "demographic_parity",
    *,
    fit_on: Any,
    evaluate_on: Any = None,
    objective: str = "accuracy_score",
    grid_size: int = 1000,
    random_state: int = 0,
) -> dict[str, Any]:
    """Per-group thresholds that meet a fairness constraint, via fairlearn's ThresholdOptimizer.

    `constraint`: "demographic_parity" (equal selection rates), "equal_opportunity" (alias
    "true_positive_rate_parity": equal TPRs) or "equalized_odds" (equal TPRs and FPRs).
    Among rules that meet it on `fit_on` rows, ThresholdOptimizer (Hardt et al. 2016) picks
    the one maximising `objective` ("accuracy_score" or "balanced_accuracy_score"), on a grid
    of `grid_size` + 1 constraint values.

    The rule is randomised in general. For each group it is a mix of two thresholds,
    "score > t0 with probability p0, else score > t1", which is how a rate between two
    achievable rates is met exactly; for equalized odds a group may additionally be
    replaced, with probability `p_constant`, by a coin flip (`constant_positive_rate`),
    which deliberately lowers that group's TPR to the others'. Decisions are drawn with
    `random_state` (reproducible); `expected` gives the metrics of the rule itself (each
    row counted with its probability of a positive decision), free of that draw's noise.

    `fit_on` / `evaluate_on` = (y_score, y_true, groups). Fit on the validation rows,
    evaluate on the test rows; with `evaluate_on=None` the fitting rows are reused and the
    result says so (optimistic). Every group in `evaluate_on` must occur in `fit_on`, and
    every group in `fit_on` needs both labels.

    Returns a dict: "constraint", "objective", "n_fit", "evaluated_on", "random_state",
    "rules" {group: {"thresholds": [{"operator", "threshold", "probability"}], "p_constant",
    "constant_positive_rate"}}, "randomized" (bool), "accuracy", "groups" [{"group", "n",
    "accuracy", "tpr", "fpr", "selection_rate"}], "gaps" {"demographic_parity_difference",
    "equalized_odds_difference", "equal_opportunity_difference"}, "expected" and "baseline"
    ({"accuracy", "groups", "gaps"}: the rule's expectation, and the 0.5 threshold),
    "accuracy_cost" = accuracy - baseline accuracy (negative: accuracy lost),
    "y_pred" (int64 decisions on the evaluation rows) and "p_positive" (float64).
    A threshold may be -inf (always positive) or +inf (never).
    """
    if constraint not in CONSTRAINTS:
        raise InputError(
            f"unknown constraint {constraint!r}",
            f"use one of {', '.join(CONSTRAINTS)}",
        )
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {objective!r}", f"use one of {', '.join(OBJECTIVES)}")
    fit_rows = _rows(fit_on, "fit_on")
    eval_rows = fit_rows if evaluate_on is None else _rows(evaluate_on, "evaluate_on")
    fit_scores, fit_true, fit_groups = fit_rows
    single_label = [
        str(g)
        for g in np.unique(fit_groups)
        if np.unique(fit_true[fit_groups == g]).size < 2
    ]
    if single_label:
        raise InputError(
            f"group(s) {', '.join(single_label)} have only one label among the fit_on rows",
            "fit thresholds on more rows, or merge those groups",
        )
    unseen = sorted(set(eval_rows[2]) - set(fit_groups))
    if unseen:
        raise InputError(
            f"group(s) {', '.join(unseen)} occur in evaluate_on but not in fit_on",
            "fit on rows that contain every group",
        )
    optimizer = ThresholdOptimizer(
        estimator=_GivenScores().fit(None),
        constraints=CONSTRAINTS[constraint],
        objective=objective,
        grid_size=grid_size,
        prefit=True,
        predict_method="decision_function",
    )
    optimizer.fit(fit_scores[:, None], fit_true, sensitive_features=fit_groups)
    interpolation = optimizer.interpolated_thresholder_.interpolation_dict
    scores, _, groups = eval_rows
    y_pred = np.asarray(
        optimizer.predict(scores[:, None], sensitive_features=groups, random_state=random_state)
    )
    rules = {
        str(g): _rule(
            [
                (r.operation0.operator, float(r.operation0.threshold), r.p0),
                (r.operation1.operator, float(r.operation1.threshold), r.p1),
            ],
            (r.p_ignore, r.prediction_constant) if "p_ignore" in r else None,
        )
        for g, r in interpolation.items()
    }
    return _result(
        y_pred=y_pred,
        p_positive=_p_positive(interpolation, scores, groups),
        rows=eval_rows,
        rules=rules,
        constraint=constraint,
        objective=objective,
        evaluated_on=(
            "fit_on rows (optimistic: the thresholds were fitted on these rows)"
            if evaluate_on is None
            else "evaluate_on rows"
        ),
        n_fit=int(fit_scores.shape[0]),
        random_state=random_state,
    )
