"""The fairness audit of one model's predictions: per-group metrics, gaps and their intervals.

`audit_fairness` is the entry point: it checks the inputs, splits the rows into partitions
and summarises each one (`partition_summary`: a row per group, the gaps entry with the
groups at its extremes) with the formulas of core.audit.metrics and the intervals of
core.audit.resampling. docs/metrics.md describes the output and every formula.

Partitions: one per sensitive attribute, one per pair of attributes, and one for all of them
together (when there are three or more). An intersection is keyed by the attribute names
joined with vocabulary.INTERSECTION ("sex & race") and its groups by the values joined the
same way ("Female & Black").
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.audit.metrics import (
    MIN_CLASS_ROWS,
    confusion_counts,
    count_metrics,
    gap_values,
    headline_groups,
    num,
    rate_counts,
    score_metrics,
    used_groups,
    wilson_interval,
)
from core.audit.gap_test import chance_entry, chance_p_values
from core.audit.resampling import (
    check_settings,
    group_replicates,
    json_interval,
    percentile_interval,
    stream,
)
from core.errors import InputError
from core.vocabulary import GAPS, GROUP_METRICS, OVERALL_METRICS, SCORE_METRICS, join_partition

#: A partition's four-fifths flag: its lowest disparate-impact ratio is below this.
FOUR_FIFTHS = 0.8


# -------------------------------------------------------------------- inputs and partitions


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
        labels = tuple(join_partition(v) for v in values)
        result.append(Partition(join_partition(attrs), tuple(attrs), labels, tuple(values),
                                codes.astype(np.int64).ravel()))
    return result


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


def reference_index(partition: Partition,
                    reference_groups: Mapping[str, str] | None) -> int | None:
    """Index of the disparate-impact reference named in `reference_groups[key]`; None when
    none is named: then the reference is the group with the highest selection rate
    (core.audit.metrics.gap_values, `highest_rate_group`)."""
    chosen = (reference_groups or {}).get(partition.key)
    if chosen is None:
        return None
    if chosen not in partition.labels:
        raise InputError(
            f"reference group '{chosen}' not found for '{partition.key}'; "
            f"groups are: {', '.join(partition.labels)}",
            "pick one of the listed groups",
        )
    return partition.labels.index(chosen)


def highest_rate_group(selection_rate: np.ndarray, eligible: np.ndarray) -> int:
    """The four-fifths rule's reference (29 CFR 1607.4(D)): the group with the highest
    selection rate among the eligible ones (the first in sort order on a tie); among all
    groups when none is eligible."""
    pool = np.flatnonzero(eligible) if eligible.any() else np.arange(len(selection_rate))
    return int(pool[np.argmax(selection_rate[pool])])


def _ratios(selection_rate: np.ndarray, labels: tuple[str, ...], ref: int) -> dict[str, float | None]:
    sel = selection_rate
    return {labels[g]: (num(sel[g] / sel[ref]) if sel[ref] > 0 else None) for g in range(len(labels))}


# ----------------------------------------------------------------------------------- gaps


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


# ---------------------------------------------------------------------- summaries (JSON)


def _point_metrics(y: np.ndarray, p: np.ndarray, s: np.ndarray | None, codes: np.ndarray,
                   n_groups: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Confusion counts (G, 4) and every group metric's point value (G,)."""
    counts = confusion_counts(y, p, codes, n_groups)
    point = count_metrics(counts)
    for m in SCORE_METRICS:
        point[m] = np.full(n_groups, np.nan)
    for g in range(n_groups):
        rows = codes == g
        values = score_metrics(y[rows], None if s is None else s[rows])
        for m in SCORE_METRICS:
            point[m][g] = values[m][0]
    return counts, point


def overall_summary(y: np.ndarray, p: np.ndarray, s: np.ndarray | None, *, n_boot: int,
                    confidence: float, random_state: int | None) -> dict[str, Any]:
    """Overall metrics with intervals from an ordinary (one-stratum) bootstrap of all rows."""
    codes = np.zeros(len(y), dtype=np.int64)
    counts, point = _point_metrics(y, p, s, codes, 1)
    out: dict[str, Any] = {"n": int(len(y))}
    out.update({m: num(point[m][0]) for m in OVERALL_METRICS})
    out["ci"], out["ci_excluded"] = {}, {}
    if n_boot:
        _, reps = group_replicates(y, p, s, codes, 1, n_boot, stream(random_state, "(overall)"))
    for m in OVERALL_METRICS:
        if n_boot:
            lo, hi, ex = percentile_interval(reps[m][:, 0], confidence)
            out["ci"][m], out["ci_excluded"][m] = json_interval(point[m][0], lo, hi, ex)
        else:
            out["ci"][m], out["ci_excluded"][m] = None, 0
    return out


#: Gaps that are a max - min of one metric, whose extreme pair gets a signed interval.
PAIR_GAPS = ("demographic_parity_difference", "equalized_odds_difference",
             "equal_opportunity_difference", "fpr_difference", "accuracy_difference")


def _add_pair_intervals(between: dict[str, dict[str, Any]], labels: tuple[str, ...],
                        metric_reps: Mapping[str, np.ndarray] | None,
                        confidence: float) -> None:
    """Add the interval of the signed difference metric[max_group] - metric[min_group].

    A max - min gap is never negative, so its percentile interval rarely reaches 0 even when
    every group has the same true rate; the signed difference between the two named groups
    can, and is the honest answer to "do these two groups differ?".
    """
    for k in PAIR_GAPS:
        where = between[k]
        where["pair_ci"], where["pair_ci_excluded"] = None, 0
        if metric_reps is None or where["max_group"] is None:
            continue
        reps = metric_reps[where["metric"]]
        diff = reps[:, labels.index(where["max_group"])] - reps[:, labels.index(where["min_group"])]
        lo, hi, ex = percentile_interval(diff, confidence)
        where["pair_ci"], where["pair_ci_excluded"] = json_interval(0.0, lo, hi, ex)


def partition_summary(y: np.ndarray, p: np.ndarray, s: np.ndarray | None, part: Partition, *,
                      n_boot: int, confidence: float,
                      reference_groups: Mapping[str, str] | None, min_group_size: int,
                      random_state: int | None, min_class_rows: int = MIN_CLASS_ROWS,
                      ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Group rows and the gaps entry of one partition, with their intervals.

    The gaps are over the headline groups (`headline_groups`); `all_groups` holds the same gaps
    over every group with the metric defined (fairlearn's values)."""
    G, labels = part.n_groups, part.labels
    counts, point = _point_metrics(y, p, s, part.codes, G)
    used = headline_groups(counts, min_group_size=min_group_size, min_class_rows=min_class_rows)
    named = reference_index(part, reference_groups)
    gaps = {k: float(v) for k, v in gap_values(counts, used, named).items()}
    all_gaps = gap_values(counts, used_groups(point), named)
    sizes = counts.sum(axis=1)

    nan_g = np.full(G, np.nan)
    group_ci = {m: (nan_g, nan_g, np.zeros(G, int)) for m in GROUP_METRICS}
    gap_ci = {k: (np.nan, np.nan, 0) for k in GAPS}
    if n_boot:
        rng = stream(random_state, part.key)
        reps, metric_reps = group_replicates(y, p, s, part.codes, G, n_boot, rng)
        group_ci = {m: percentile_interval(metric_reps[m], confidence) for m in GROUP_METRICS}
        for m, (k, n) in rate_counts(counts).items():  # proportions: Wilson, not the bootstrap
            group_ci[m] = (*wilson_interval(k, n, confidence), np.zeros(G, int))
        gap_reps = gap_values(reps, used, named)
        gap_ci = {k: percentile_interval(gap_reps[k], confidence) for k in GAPS}

    rows = []
    for g in range(G):
        n_pos = int(counts[g, 0] + counts[g, 3])
        row: dict[str, Any] = {
            "group": labels[g], "values": dict(zip(part.attributes, part.values[g])),
            "n": int(sizes[g]), "small": bool(sizes[g] < min_group_size),
            "n_positive": n_pos, "n_negative": int(sizes[g]) - n_pos,
        }
        row.update({m: num(point[m][g]) for m in GROUP_METRICS})
        row["ci"], row["ci_excluded"] = {}, {}
        for m in GROUP_METRICS:
            lo, hi, ex = group_ci[m]
            row["ci"][m], row["ci_excluded"][m] = json_interval(point[m][g], lo[g], hi[g], ex[g])
        rows.append(row)

    entry: dict[str, Any] = {k: num(gaps[k]) for k in GAPS}
    ratio = entry["min_disparate_impact_ratio"]
    entry["four_fifths_flag"] = None if ratio is None else bool(ratio < FOUR_FIFTHS)
    sel = point["selection_rate"]
    ref = named if named is not None else highest_rate_group(sel, used["selection_rate"])
    largest = int(np.argmax(sizes))
    entry["disparate_impact"] = {
        "reference_group": labels[ref],
        "reference": "named" if named is not None else "highest selection rate",
        "ratios": _ratios(sel, labels, ref),
        "largest_group": {"reference_group": labels[largest], "ratios": _ratios(sel, labels, largest)},
    }
    overall_accuracy = float((counts[:, 0] + counts[:, 2]).sum() / sizes.sum())
    entry["between"] = gap_extremes(point, used, labels, overall_accuracy,
                                gaps["equal_opportunity_difference"], gaps["fpr_difference"])
    entry["between"]["min_disparate_impact_ratio"] = {
        "metric": "selection_rate", "reference_group": labels[ref],
        "min_group": entry["between"]["demographic_parity_ratio"]["min_group"],
    }
    for k, where in entry["between"].items():
        if entry.get(k) is None:  # no gap, so no pair of groups to name
            entry["between"][k] = {f: (v if f == "metric" else None) for f, v in where.items()}
    _add_pair_intervals(entry["between"], labels, metric_reps if n_boot else None, confidence)
    small = sizes < min_group_size
    entry["excluded_groups"] = {m: [labels[g] for g in np.flatnonzero(~used[m] & ~small)]
                                for m in ("tpr", "fpr")}
    entry["small_groups"] = [labels[g] for g in np.flatnonzero(small)]
    entry["all_groups"] = {k: num(all_gaps[k]) for k in GAPS}
    # "the groups differ": a permutation test of each gap (its own stream: the intervals stay)
    entry["chance"] = chance_entry(chance_p_values(counts, used, gaps, n_boot,
                                                   stream(random_state, f"{part.key} (chance)")), confidence)
    entry["ci"], entry["ci_excluded"] = {}, {}
    for k in GAPS:
        lo, hi, ex = gap_ci[k]
        entry["ci"][k], entry["ci_excluded"][k] = json_interval(gaps[k], lo, hi, ex)
    return rows, entry


# ---------------------------------------------------------------------------- entry point


def audit_fairness(y_true: Any, y_pred: Any, y_score: Any, sensitive: pd.DataFrame, *,
                   n_boot: int = 1000, confidence: float = 0.95,
                   reference_groups: Mapping[str, str] | None = None,
                   min_group_size: int = 30, random_state: int | None = 0,
                   min_class_rows: int = MIN_CLASS_ROWS) -> dict[str, Any]:
    """Per-group metrics, gaps and their percentile bootstrap intervals, as report.json wants.

    Returns ``{"overall": {...}, "groups": {key: [row, ...]}, "gaps": {key: {...}},
    "bootstrap": {...}}``; the shapes are documented in docs/metrics.md. `reference_groups`
    maps a partition key to the reference group of its disparate-impact ratio (default: the
    headline group with the highest selection rate, as the four-fifths rule has it). Groups
    with fewer than `min_group_size` rows have ``"small": true`` and stay out of the headline
    gaps, as do groups with fewer than `min_class_rows` positives (negatives) from the TPR (FPR)
    gaps; `all_groups` has every gap over all groups.
    `n_boot = 0` skips the bootstrap (every interval is None).
    """
    y, p, s = check_predictions(y_true, y_pred, y_score)
    frame = check_sensitive(sensitive, len(y))
    if not isinstance(min_group_size, (int, np.integer)) or min_group_size < 1:
        raise InputError(f"min_group_size must be a positive integer, got {min_group_size}",
                         "the default is 30")
    if not isinstance(min_class_rows, (int, np.integer)) or min_class_rows < 1:
        raise InputError(f"min_class_rows must be a positive integer, got {min_class_rows}",
                         f"the default is {MIN_CLASS_ROWS}")
    check_settings(n_boot, confidence)
    parts = partitions(frame)
    known = {part.key for part in parts}
    unknown = sorted(set(reference_groups or {}) - known)
    if unknown:
        raise InputError(f"reference_groups names unknown attributes: {unknown}",
                         f"use one of: {', '.join(sorted(known))}")

    overall = overall_summary(y, p, s, n_boot=n_boot, confidence=confidence,
                              random_state=random_state)
    groups: dict[str, list[dict[str, Any]]] = {}
    gaps: dict[str, dict[str, Any]] = {}
    for part in parts:
        rows, gap = partition_summary(
            y, p, s, part, n_boot=n_boot, confidence=confidence,
            reference_groups=reference_groups, min_group_size=min_group_size,
            random_state=random_state, min_class_rows=min_class_rows,
        )
        groups[part.key] = rows
        gaps[part.key] = gap
    return {
        "overall": overall,
        "groups": groups,
        "gaps": gaps,
        "bootstrap": {"method": "percentile", "n_boot": int(n_boot),
                      "confidence": float(confidence), "stratified": True,
                      "random_state": random_state, "min_group_size": int(min_group_size),
                      "min_class_rows": int(min_class_rows), "group_rate_interval": "wilson"},
    }
