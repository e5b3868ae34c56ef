"""Vectorised percentile bootstrap for per-group metrics, gaps, and paired model comparisons.

Resample counts, not rows. With stratification (the default) each group keeps its size n_g:

* confusion-count metrics: a group's replicate is one multinomial draw of its four cells
  ``[TP, FP, TN, FN] ~ Multinomial(n_g, observed cell proportions)``, which has exactly the
  distribution of the confusion counts of n_g rows drawn with replacement from the group;
  all B replicates of all groups are one ``Generator.multinomial`` call;
* score metrics (ROC AUC, calibration error): per-row multiplicities ``W`` of shape
  (B, n_g) (row i drawn W[b, i] times, each row of W summing to n_g: n_g uniform picks,
  then one bincount) feed the weighted formulas of `core.audit.fairness`; rows are sorted
  once, and replicates are processed in blocks to bound memory. These draws are separate
  from the count draws: each metric's interval is a bootstrap interval of that metric, and
  no gap mixes a count metric with a score metric.

A gap's replicate b is computed from the groups' replicates b. Replicates where a value is
undefined (NaN, e.g. a resample with no positives) are left out of the quantiles and counted
in ``ci_excluded``. The interval is ``[q_{(1-c)/2}, q_{(1+c)/2}]`` of the remaining
replicates, linear interpolation (numpy's and fairlearn's default).

`stratify=False` resamples n rows from all rows instead (the group sizes vary, as in
fairlearn's MetricFrame bootstrap); it is there to compare like with like.

Each partition draws from its own stream, ``SeedSequence(random_state, spawn_key=(crc32(key),))``,
so adding an attribute does not change the intervals of the others.
"""

from __future__ import annotations

import warnings
import zlib
from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.audit.fairness import (
    GAPS,
    GROUP_METRICS,
    OVERALL_METRICS,
    SCORE_METRICS,
    Partition,
    auc_from_layout,
    auc_layout,
    calibration_residuals,
    check_predictions,
    check_sensitive,
    confusion_counts,
    count_metrics,
    ece_from_residuals,
    gap_extremes,
    gap_values,
    num,
    partitions,
    reference_index,
    score_metrics,
)
from core.errors import InputError

#: Replicates x rows of one block of row multiplicities (bounds memory to ~100 MB).
BLOCK_CELLS = 4_000_000


def check_settings(n_boot: int, confidence: float) -> None:
    """Raise InputError unless n_boot >= 0 is an integer and 0 < confidence < 1."""
    if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 0:
        raise InputError(f"n_boot must be a non-negative integer, got {n_boot!r}",
                         "use 1000 for reported intervals, 0 to skip the bootstrap")
    if not isinstance(confidence, (float, int)) or not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1, got {confidence!r}",
                         "use 0.95 for 95% intervals")


def stream(random_state: int | None, key: str) -> np.random.Generator:
    """The random stream of one partition (or of "(overall)")."""
    return np.random.default_rng(
        np.random.SeedSequence(random_state, spawn_key=(zlib.crc32(key.encode()),))
    )


# --------------------------------------------------------------------------- resampling


def count_replicates(counts: np.ndarray, n_boot: int, rng: np.random.Generator, *,
                     stratify: bool = True) -> np.ndarray:
    """Bootstrap replicates of cell counts, shape (n_boot, G, C) from `counts` (G, C).

    Stratified: group g's cells ~ Multinomial(n_g, counts[g] / n_g), independently per group.
    Not stratified: all G x C cells ~ Multinomial(n, counts / n) jointly.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if stratify:
        sizes = counts.sum(axis=1)
        with np.errstate(invalid="ignore"):
            p = counts / np.maximum(sizes, 1)[:, None]
        return rng.multinomial(sizes, p, size=(n_boot, counts.shape[0]))
    total = counts.sum()
    flat = rng.multinomial(total, counts.ravel() / total, size=n_boot)
    return flat.reshape(n_boot, *counts.shape)


def uniform_multiplicities(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Shape (n_boot, n): how often each of n rows is picked in n draws with replacement,
    i.e. n_boot draws of Multinomial(n, (1/n, ..., 1/n)) (n picks, then one bincount)."""
    picks = rng.integers(0, n, size=(n_boot, n), dtype=np.int64)
    picks += (np.arange(n_boot, dtype=np.int64) * n)[:, None]
    return np.bincount(picks.ravel(), minlength=n_boot * n).reshape(n_boot, n)


def _group_scores(w: np.ndarray, layout: tuple) -> tuple[np.ndarray, np.ndarray]:
    n_neg, lt, le, residual = layout
    if n_neg == 0 or n_neg == w.shape[1]:
        auc = np.full(w.shape[0], np.nan)
    else:
        auc = auc_from_layout(w[:, :n_neg], w[:, n_neg:], lt, le)
    return auc, ece_from_residuals(w, residual)


def score_replicates(y: np.ndarray, s: np.ndarray | None, codes: np.ndarray, n_groups: int,
                     n_boot: int, rng: np.random.Generator, *,
                     stratify: bool = True) -> dict[str, np.ndarray]:
    """Replicates of ROC AUC and calibration error per group, each of shape (n_boot, G).

    Rows are sorted once by (group, label, score), so inside a group the negatives come
    first in score order and the weighted AUC reads contiguous slices of the multiplicities.
    Replicates are processed in blocks of about BLOCK_CELLS multiplicities.
    """
    out = {m: np.full((n_boot, n_groups), np.nan) for m in SCORE_METRICS}
    if s is None or n_boot == 0:
        return out
    order = np.lexsort((s, y, codes))
    y_o, s_o = y[order], s[order]
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=n_groups))]
    layouts = []
    for g in range(n_groups):
        y_g, s_g = y_o[bounds[g]:bounds[g + 1]], s_o[bounds[g]:bounds[g + 1]]
        _, _, lt, le = auc_layout(y_g, s_g)
        layouts.append((int((y_g == 0).sum()), lt, le, calibration_residuals(y_g, s_g)))

    def blocks(width: int):
        step = max(1, BLOCK_CELLS // max(width, 1))
        return [(b0, min(n_boot, b0 + step)) for b0 in range(0, n_boot, step)]

    if stratify:
        for g in range(n_groups):
            n_g = int(bounds[g + 1] - bounds[g])
            for b0, b1 in blocks(n_g):
                w = uniform_multiplicities(n_g, b1 - b0, rng)
                out["roc_auc"][b0:b1, g], out["calibration_error"][b0:b1, g] = (
                    _group_scores(w, layouts[g]))
    else:
        for b0, b1 in blocks(len(y)):
            w = uniform_multiplicities(len(y), b1 - b0, rng)
            for g in range(n_groups):
                out["roc_auc"][b0:b1, g], out["calibration_error"][b0:b1, g] = (
                    _group_scores(w[:, bounds[g]:bounds[g + 1]], layouts[g]))
    return out


def percentile_interval(replicates: np.ndarray,
                        confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring NaN: (lower, upper, number of NaN)."""
    alpha = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN bounds
        lo, hi = np.nanquantile(replicates, [alpha, 1 - alpha], axis=0)
    return lo, hi, np.isnan(replicates).sum(axis=0)


def _ci(point: float, lo: float, hi: float, excluded: int) -> tuple[list | None, int]:
    if np.isnan(point) or np.isnan(lo):
        return None, int(excluded)
    return [float(lo), float(hi)], int(excluded)


# ---------------------------------------------------------------------- summaries (JSON)


def group_replicates(y: np.ndarray, p: np.ndarray, s: np.ndarray | None, codes: np.ndarray,
                     n_groups: int, n_boot: int, rng: np.random.Generator, *,
                     stratify: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Replicated confusion counts (B, G, 4) and every group metric's replicates (B, G)."""
    counts = confusion_counts(y, p, codes, n_groups)
    reps = count_replicates(counts, n_boot, rng, stratify=stratify)
    metrics = count_metrics(reps)
    metrics.update(score_replicates(y, s, codes, n_groups, n_boot, rng, stratify=stratify))
    return reps, metrics


def _point_metrics(y, p, s, codes, n_groups):
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
            out["ci"][m], out["ci_excluded"][m] = _ci(point[m][0], lo, hi, ex)
        else:
            out["ci"][m], out["ci_excluded"][m] = None, 0
    return out


def _used(point: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {m: ~np.isnan(point[m]) for m in ("accuracy", "selection_rate", "tpr", "fpr")}


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
        where["pair_ci"], where["pair_ci_excluded"] = _ci(0.0, lo, hi, ex)


def partition_summary(y: np.ndarray, p: np.ndarray, s: np.ndarray | None, part: Partition, *,
                      n_boot: int, confidence: float,
                      reference_groups: Mapping[str, str] | None, min_group_size: int,
                      random_state: int | None, stratify: bool = True,
                      ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Group rows and the gaps entry of one partition, with their intervals."""
    G, labels = part.n_groups, part.labels
    counts, point = _point_metrics(y, p, s, part.codes, G)
    used = _used(point)
    ref = reference_index(part, counts, reference_groups)
    gaps = {k: float(v) for k, v in gap_values(counts, used, ref).items()}

    nan_g = np.full(G, np.nan)
    group_ci = {m: (nan_g, nan_g, np.zeros(G, int)) for m in GROUP_METRICS}
    gap_ci = {k: (np.nan, np.nan, 0) for k in GAPS}
    if n_boot:
        rng = stream(random_state, part.key)
        reps, metric_reps = group_replicates(y, p, s, part.codes, G, n_boot, rng,
                                             stratify=stratify)
        group_ci = {m: percentile_interval(metric_reps[m], confidence) for m in GROUP_METRICS}
        gap_reps = gap_values(reps, used, ref)
        gap_ci = {k: percentile_interval(gap_reps[k], confidence) for k in GAPS}

    rows = []
    sizes = counts.sum(axis=1)
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
            row["ci"][m], row["ci_excluded"][m] = _ci(point[m][g], lo[g], hi[g], ex[g])
        rows.append(row)

    entry: dict[str, Any] = {k: num(gaps[k]) for k in GAPS}
    ratio = entry["min_disparate_impact_ratio"]
    entry["four_fifths_flag"] = None if ratio is None else bool(ratio < 0.8)
    sel = point["selection_rate"]
    entry["disparate_impact"] = {
        "reference_group": labels[ref],
        "ratios": {labels[g]: (num(sel[g] / sel[ref]) if sel[ref] > 0 else None)
                   for g in range(G)},
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
    entry["excluded_groups"] = {m: [labels[g] for g in np.flatnonzero(~used[m])]
                                for m in ("tpr", "fpr")}
    entry["small_groups"] = [labels[g] for g in range(G) if sizes[g] < min_group_size]
    entry["ci"], entry["ci_excluded"] = {}, {}
    for k in GAPS:
        lo, hi, ex = gap_ci[k]
        entry["ci"][k], entry["ci_excluded"][k] = _ci(gaps[k], lo, hi, ex)
    return rows, entry


# --------------------------------------------------------------------- paired comparison

# Joint cell of a row: 4 * pred_a + 2 * pred_b + y. These map it to each model's
# [TP, FP, TN, FN] cell, so both models' counts come from one draw of the same rows.
_JOINT = [(pa, pb, y) for pa in (0, 1) for pb in (0, 1) for y in (0, 1)]


def _to_model(which: int) -> np.ndarray:
    m = np.zeros((8, 4), dtype=np.int64)
    for j, cell in enumerate(_JOINT):
        pred, y = cell[which], cell[2]
        m[j, (0 if y else 1) if pred else (3 if y else 2)] = 1
    return m


def paired_gap_differences(y_true: Any, y_pred_a: Any, y_pred_b: Any,
                           sensitive: pd.DataFrame, *, n_boot: int = 1000,
                           confidence: float = 0.95,
                           reference_groups: Mapping[str, str] | None = None,
                           random_state: int | None = 0,
                           stratify: bool = True) -> dict[str, dict[str, dict[str, Any]]]:
    """Bootstrap CI of (model A's gap - model B's gap) on the same test rows.

    Every row is counted in one of 8 joint cells (pred_a, pred_b, y); a replicate draws each
    group's joint cells ~ Multinomial(n_g, observed proportions), which resamples the same
    rows for both models. Replicate b of the difference is gap_A(b) - gap_B(b).

    Returns ``{key: {gap: {"model_a", "model_b", "difference", "ci": [lo, hi] | None,
    "excludes_zero": bool | None, "ci_excluded": int}}}`` for every partition and gap.
    For a difference-type gap a positive difference means A has the larger gap; for
    worst_group_accuracy and the ratios it means A has the higher (better) value.
    """
    y, pa, _ = check_predictions(y_true, y_pred_a, None)
    _, pb, _ = check_predictions(y_true, y_pred_b, None)
    frame = check_sensitive(sensitive, len(y))
    check_settings(n_boot, confidence)
    to_a, to_b = _to_model(0), _to_model(1)
    joint_cell = 4 * pa + 2 * pb + y
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for part in partitions(frame):
        G = part.n_groups
        joint = np.bincount(part.codes * 8 + joint_cell, minlength=G * 8).reshape(G, 8)
        counts_a, counts_b = joint @ to_a, joint @ to_b
        used = _used(count_metrics(counts_a))  # tpr/fpr definedness depends on y only
        ref = reference_index(part, counts_a + counts_b, reference_groups)
        point_a, point_b = gap_values(counts_a, used, ref), gap_values(counts_b, used, ref)
        if n_boot:
            reps = count_replicates(joint, n_boot, stream(random_state, part.key),
                                    stratify=stratify)
            reps_a, reps_b = gap_values(reps @ to_a, used, ref), gap_values(reps @ to_b, used, ref)
        entry = {}
        for k in GAPS:
            diff = float(point_a[k] - point_b[k])
            ci, excluded = None, 0
            if n_boot:
                lo, hi, ex = percentile_interval(reps_a[k] - reps_b[k], confidence)
                ci, excluded = _ci(diff, lo, hi, ex)
            entry[k] = {
                "model_a": num(point_a[k]), "model_b": num(point_b[k]),
                "difference": num(diff), "ci": ci,
                "excludes_zero": None if ci is None else bool(ci[0] > 0 or ci[1] < 0),
                "ci_excluded": excluded,
            }
        result[part.key] = entry
    return result


__all__ = [
    "check_settings", "count_replicates", "uniform_multiplicities", "score_replicates",
    "percentile_interval", "group_replicates", "overall_summary", "partition_summary",
    "paired_gap_differences", "stream",
]
