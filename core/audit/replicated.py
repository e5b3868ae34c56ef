"""Intervals of gaps that cover training randomness as well as the sampling of test rows.

A recipe (a pretraining with one fine-tuning strategy, or the supervised baseline) is trained
R times with different seeds and every replicate is judged on the same test rows. A gap then
varies for two reasons: the test rows are one sample of the population (shared by every
replicate and every model), and training is random (differs between replicates). The
estimate is the mean over replicates X_r (a gap, or the paired difference d_r = gap_a(r) -
gap_b(r)). For R exchangeable replicates

    var(mean X) = shared + (var(X_r) - shared) / R

with `shared` the covariance of two different replicates, which comes only from the shared
test rows (trainings are independent): it is estimated from resampling the test rows within
groups (the same resampled rows for every replicate and both recipes) as the mean
covariance between two replicates' resampled values (`shared_variance`), and var(X_r) -
shared, the spread of replicates on fixed rows, by their sample variance s^2. The interval
is ``mean +- t_df sqrt(shared + s^2 / R)`` with Welch-Satterthwaite's df (`t_interval`), and
the two-sided p-value is the same t-test's. With one replicate s^2 cannot be estimated: the
interval is then the percentile interval of the test-row bootstrap (as
core.audit.comparison's) and the p-value the bootstrap's. docs/metrics.md says why this,
not a plain two-level bootstrap, and how it was validated by simulation.

Rows are resampled as counts: the rows of a group are compressed to their distinct patterns
(y and every replicate's decision of both recipes), and a resample of the group is one
multinomial draw over its patterns, from which every replicate's confusion counts follow.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from core.audit.fairness import check_predictions, check_sensitive, partitions, reference_index
from core.audit.metrics import MIN_CLASS_ROWS, confusion_counts, count_metrics, gap_values, headline_groups, num
from core.audit.resampling import check_settings, count_replicates, json_interval, percentile_interval, stream
from core.errors import InputError
from core.vocabulary import GAPS


def _decisions(y: np.ndarray, preds: Sequence[Any], side: str) -> np.ndarray:
    """The replicates' 0/1 decisions as an (R, n) array, each checked against `y`."""
    if len(preds) == 0:
        raise InputError(f"no replicate predictions for {side}", "pass at least one array")
    return np.stack([check_predictions(y, p, None)[1] for p in preds])


def _resampled_counts(y: np.ndarray, decisions: np.ndarray, codes: np.ndarray, n_groups: int,
                      n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Confusion counts (n_boot, R, G, 4) of every replicate (rows of `decisions`, shape
    (R, n)) on the same within-group resamples of the test rows.

    Rows with the same group, label and decisions are interchangeable, so a resample of
    group g (n_g rows with replacement) is one Multinomial(n_g, pattern frequencies) draw.
    """
    R = decisions.shape[0]
    keys = np.column_stack([codes, y, decisions.T])
    patterns, counts = np.unique(keys, axis=0, return_counts=True)
    out = np.zeros((n_boot, R, n_groups, 4), dtype=np.int64)
    for g in range(n_groups):
        mine = patterns[:, 0] == g
        pattern, freq = patterns[mine], counts[mine]
        draws = rng.multinomial(freq.sum(), freq / freq.sum(), size=n_boot)       # (B, U_g)
        y_u, pred_u = pattern[:, 1], pattern[:, 2:]                                # (U,), (U, R)
        cell = np.where(pred_u == 1, 1 - y_u[:, None], 2 + y_u[:, None])            # (U, R)
        onehot = (cell[:, :, None] == np.arange(4)).astype(np.int64)               # (U, R, 4)
        out[:, :, g, :] = np.einsum("bu,urc->brc", draws, onehot)
    return out


def _joint_resampled_counts(y: np.ndarray, decisions: np.ndarray, codes: np.ndarray, n_groups: int,
                            n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`_resampled_counts` for one replicate per side (decisions (2, n)), drawn exactly as
    core.audit.comparison draws them: each group's 8 joint cells (4 pred_a + 2 pred_b + y)
    ~ Multinomial in one `count_replicates` call, so R = 1 reproduces its intervals."""
    joint_cell = 4 * decisions[0] + 2 * decisions[1] + y
    joint = np.bincount(codes * 8 + joint_cell, minlength=n_groups * 8).reshape(n_groups, 8)
    reps = count_replicates(joint, n_boot, rng)                                   # (B, G, 8)
    j = np.arange(8)
    pred, label = np.stack([(j >> 2) & 1, (j >> 1) & 1]), j & 1                  # (2, 8), (8,)
    cell = np.where(pred == 1, 1 - label, 2 + label)                              # (2, 8)
    onehot = (cell[:, :, None] == np.arange(4)).astype(np.int64)                  # (2, 8, 4)
    return np.einsum("bgj,rjc->brgc", reps, onehot)


def _observed_counts(y: np.ndarray, decisions: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    return np.stack([confusion_counts(y, p, codes, n_groups) for p in decisions])   # (R, G, 4)


def shared_variance(boot: np.ndarray) -> float:
    """The part of the replicate mean's variance that all R replicates share because they are
    judged on the same test rows: the mean covariance between two different replicates under
    resampling the rows, ``(R var(mean_r X_r) - mean_r var(X_r)) / (R - 1)`` over the
    resamples `boot` (B, R) (clipped at 0). With one replicate: its whole bootstrap variance."""
    R = boot.shape[1]
    whole = float(np.var(boot.mean(axis=1), ddof=1))
    if R == 1:
        return whole
    each = float(np.var(boot, axis=0, ddof=1).mean())
    return max((R * whole - each) / (R - 1), 0.0)


def t_interval(mean: float, shared: float, within: Sequence[tuple[float, float]],
               confidence: float) -> tuple[float, float, float]:
    """(lower, upper, two-sided p of "the mean is 0") of ``mean +- t sqrt(shared + sum v)``.

    `within` holds each replicated side's (s^2 / R, R - 1); the degrees of freedom are
    Welch-Satterthwaite's, ``(shared + sum v)^2 / sum (v^2 / dof)``, with `shared` (from
    the row resamples) counted as known.
    """
    total = shared + sum(v for v, _ in within)
    if total <= 0:
        return mean, mean, (1.0 if mean == 0 else 0.0)
    denominator = sum(v ** 2 / dof for v, dof in within if dof > 0)
    df = total ** 2 / denominator if denominator > 0 else np.inf
    se = np.sqrt(total)
    half = float(stats.t.ppf(0.5 + confidence / 2, df) * se)
    return mean - half, mean + half, float(2 * stats.t.sf(abs(mean) / se, df))


def bootstrap_p_value(replicates: np.ndarray) -> float | None:
    """Two-sided percentile-bootstrap p-value of "the difference is 0": twice the smaller
    share of (defined) replicates on either side of 0, at most 1."""
    r = replicates[~np.isnan(replicates)]
    if len(r) == 0:
        return None
    return float(min(1.0, 2 * min((r <= 0).mean(), (r >= 0).mean())))


def _within(values: np.ndarray) -> tuple[float, float]:
    """(s^2 / R, R - 1): the between-replicate variance of the mean, and its degrees of freedom."""
    R = len(values)
    return (float(np.var(values, ddof=1) / R), R - 1) if R > 1 else (0.0, 0)


def _complete(*boots: np.ndarray) -> tuple[list[np.ndarray], int]:
    """The resamples in which every replicate's value is defined, and how many were left out."""
    keep = np.all([~np.isnan(b).any(axis=1) for b in boots], axis=0)
    return [b[keep] for b in boots], int((~keep).sum())


def _one_side(values: np.ndarray, boot: np.ndarray | None,
              confidence: float) -> tuple[list | None, float | None, int]:
    """(ci, p, ci_excluded) of the mean of `values` (R,) with row resamples `boot` (B, R)."""
    mean = float(np.mean(values))
    if boot is None or np.isnan(mean):
        return None, None, 0
    if len(values) == 1:                    # training variance not estimable: the row bootstrap
        lo, hi, excluded = percentile_interval(boot[:, 0], confidence)
        ci, excluded = json_interval(mean, float(lo), float(hi), int(excluded))
        return ci, (bootstrap_p_value(boot[:, 0]) if ci else None), excluded
    (kept,), excluded = _complete(boot)
    if len(kept) < 2:
        return None, None, excluded
    lo, hi, p = t_interval(mean, shared_variance(kept), [_within(values)], confidence)
    return [float(lo), float(hi)], p, excluded


def _two_sides(a: np.ndarray, b: np.ndarray, boot_a: np.ndarray, boot_b: np.ndarray,
               confidence: float) -> tuple[list | None, float | None, int]:
    """(ci, p, ci_excluded) of mean(a) - mean(b) for unequal numbers of replicates: the shared
    variance of the difference plus each side's s^2 / R (a side with one replicate has its
    whole row-bootstrap variance in the shared part and no training part of its own)."""
    mean = float(np.mean(a) - np.mean(b))
    if np.isnan(mean):
        return None, None, 0
    (ka, kb), excluded = _complete(boot_a, boot_b)
    if len(ka) < 2:
        return None, None, excluded
    whole = float(np.var(ka.mean(axis=1) - kb.mean(axis=1), ddof=1))
    own = [float(np.var(k.mean(axis=1), ddof=1)) - shared_variance(k) if k.shape[1] > 1 else 0.0
           for k in (ka, kb)]
    lo, hi, p = t_interval(mean, max(whole - sum(own), 0.0), [_within(a), _within(b)], confidence)
    return [float(lo), float(hi)], p, excluded


def replicated_gaps(y_true: Any, preds: Sequence[Any], groups: pd.DataFrame, *, n_boot: int = 1000,
                    confidence: float = 0.95, random_state: int | None = 0,
                    min_group_size: int = 30,
                    min_class_rows: int = MIN_CLASS_ROWS) -> dict[str, dict[str, dict[str, Any]]]:
    """Every gap of every partition over R training replicates (`preds`: R arrays of 0/1
    decisions on the same test rows, replicate 0 first).

    Returns ``{partition: {gap: {"mean", "sd", "min", "max", "ci": [lo, hi] | None,
    "n_replicates"}}}``: the mean, standard deviation (ddof = 1; None with one replicate),
    smallest and largest value over the replicates, and the interval of the mean that covers
    both test-row sampling and training (module docstring). The gaps are over the audit's
    headline groups (`headline_groups`, by `min_group_size` and `min_class_rows`), and the
    disparate-impact reference is the highest selection rate, as in `audit_fairness`.
    A replicate whose gap is undefined is left out (`n_replicates` counts the others).
    """
    y = check_predictions(y_true, np.zeros_like(np.asarray(y_true)), None)[0]
    decisions = _decisions(y, preds, "the model")
    frame = check_sensitive(groups, len(y))
    check_settings(n_boot, confidence)
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for part in partitions(frame):
        observed = _observed_counts(y, decisions, part.codes, part.n_groups)
        # group sizes and classes depend on y only: the same groups in every replicate
        used = headline_groups(observed[0], min_group_size=min_group_size, min_class_rows=min_class_rows)
        ref = reference_index(part, None)
        point = gap_values(observed, used, ref)                   # {gap: (R,)}
        boot = None
        if n_boot:
            counts = _resampled_counts(y, decisions, part.codes, part.n_groups, n_boot,
                                       stream(random_state, part.key))
            boot = gap_values(counts, used, ref)                  # {gap: (B, R)}
        entry = {}
        for k in GAPS:
            keep = ~np.isnan(point[k])
            values = point[k][keep]
            n_rep = int(keep.sum())
            ci = None
            if n_rep and boot is not None:
                ci = _one_side(values, boot[k][:, keep], confidence)[0]
            entry[k] = {"mean": num(values.mean()) if n_rep else None,
                        "sd": num(np.std(values, ddof=1)) if n_rep > 1 else None,
                        "min": num(values.min()) if n_rep else None,
                        "max": num(values.max()) if n_rep else None,
                        "ci": ci, "n_replicates": n_rep}
        result[part.key] = entry
    return result


#: The overall metrics of decisions whose interval covers training (ROC AUC needs the scores: its
#: interval stays replicate 0's bootstrap).
REPLICATED_OVERALL = ("accuracy", "balanced_accuracy")


def replicated_overall(y_true: Any, preds: Sequence[Any], *, n_boot: int = 1000, confidence: float = 0.95,
                       random_state: int | None = 0) -> dict[str, dict[str, Any]]:
    """Overall accuracy and balanced accuracy over R training replicates: ``{metric: {"mean",
    "ci": [lo, hi] | None}}``, the interval of the mean covering test-row sampling (all rows
    resampled together, the same rows for every replicate) and training, as for the gaps."""
    y = check_predictions(y_true, np.zeros_like(np.asarray(y_true)), None)[0]
    decisions = _decisions(y, preds, "the model")
    check_settings(n_boot, confidence)
    codes = np.zeros(len(y), dtype=np.int64)
    point = count_metrics(_observed_counts(y, decisions, codes, 1))                     # {m: (R, 1)}
    boot = (count_metrics(_resampled_counts(y, decisions, codes, 1, n_boot, stream(random_state, "(overall)")))
            if n_boot else None)                                                         # {m: (B, R, 1)}
    result = {}
    for metric in REPLICATED_OVERALL:
        values = point[metric][:, 0]
        ci = _one_side(values, boot[metric][:, :, 0], confidence)[0] if boot is not None else None
        result[metric] = {"mean": num(values.mean()), "ci": ci}
    return result


def replicated_paired_differences(y_true: Any, preds_a: Sequence[Any], preds_b: Sequence[Any],
                                  groups: pd.DataFrame, *, n_boot: int = 1000, confidence: float = 0.95,
                                  random_state: int | None = 0, min_group_size: int = 30,
                                  min_class_rows: int = MIN_CLASS_ROWS) -> dict[str, dict[str, dict[str, Any]]]:
    """Recipe A's mean gap minus recipe B's over their replicates, on the same test rows.

    With as many replicates on both sides, replicate r of A is paired with replicate r of B
    (they share replicate r's seed; the SSL strategies also share its pretraining) and the
    interval is that of the mean of the paired differences d_r; with unequal numbers the two
    sides' between-replicate variances add (Welch). Returns ``{partition: {gap: {"model_a",
    "model_b", "difference", "ci", "p_value", "excludes_zero", "ci_excluded",
    "n_replicates"}}}`` with `model_a` / `model_b` the mean gaps; `excludes_zero` is the
    unadjusted ``p_value < 1 - confidence`` here (core.audit.multiplicity decides it on the
    family-adjusted p-value). With one replicate per side this is the paired test-row
    bootstrap of core.audit.comparison (the same headline groups).
    """
    y = check_predictions(y_true, np.zeros_like(np.asarray(y_true)), None)[0]
    dec_a, dec_b = _decisions(y, preds_a, "model A"), _decisions(y, preds_b, "model B")
    frame = check_sensitive(groups, len(y))
    check_settings(n_boot, confidence)
    Ra, Rb = dec_a.shape[0], dec_b.shape[0]
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for part in partitions(frame):
        G = part.n_groups
        obs_a = _observed_counts(y, dec_a, part.codes, G)
        obs_b = _observed_counts(y, dec_b, part.codes, G)
        used = headline_groups(obs_a[0], min_group_size=min_group_size, min_class_rows=min_class_rows)
        ref = reference_index(part, None)
        point_a, point_b = gap_values(obs_a, used, ref), gap_values(obs_b, used, ref)
        if n_boot:
            draw = _joint_resampled_counts if Ra == Rb == 1 else _resampled_counts
            counts = draw(y, np.vstack([dec_a, dec_b]), part.codes, G, n_boot, stream(random_state, part.key))
            boot_a, boot_b = gap_values(counts[:, :Ra], used, ref), gap_values(counts[:, Ra:], used, ref)
        entry = {}
        for k in GAPS:
            a, b = point_a[k], point_b[k]
            ci, p, excluded = None, None, 0
            if n_boot and Ra == Rb:
                ci, p, excluded = _one_side(a - b, boot_a[k] - boot_b[k], confidence)
            elif n_boot:
                ci, p, excluded = _two_sides(a, b, boot_a[k], boot_b[k], confidence)
            entry[k] = {"model_a": num(np.mean(a)), "model_b": num(np.mean(b)),
                        "difference": num(np.mean(a) - np.mean(b)), "ci": ci, "p_value": p,
                        "excludes_zero": None if p is None else bool(p < 1 - confidence),
                        "ci_excluded": excluded, "n_replicates": [Ra, Rb]}
        result[part.key] = entry
    return result


#: The rates `replicated_paired_rates` compares, from the confusion counts (TP, FP, TN, FN).
PAIRED_RATES = ("accuracy", "balanced_accuracy")


def _rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy = (TP + TN) / n and balanced accuracy = (TP / (TP + FN) + TN / (TN + FP)) / 2
    over the last axis of `counts` (..., 4) in the order (TP, FP, TN, FN); NaN where undefined."""
    tp, fp, tn, fn = (counts[..., i].astype(np.float64) for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = (tp + tn) / (tp + fp + tn + fn)
        balanced = (tp / (tp + fn) + tn / (tn + fp)) / 2
    return {"accuracy": accuracy, "balanced_accuracy": balanced}


def _paired_entry(a: np.ndarray, b: np.ndarray, boot_a: np.ndarray | None, boot_b: np.ndarray | None,
                  confidence: float) -> dict[str, Any]:
    """The entry of one rate: mean of A's replicates minus mean of B's, its interval and p."""
    ci, p, excluded = None, None, 0
    if boot_a is not None and len(a) == len(b):
        ci, p, excluded = _one_side(a - b, boot_a - boot_b, confidence)
    elif boot_a is not None:
        ci, p, excluded = _two_sides(a, b, boot_a, boot_b, confidence)
    return {"model_a": num(np.mean(a)), "model_b": num(np.mean(b)), "difference": num(np.mean(a) - np.mean(b)),
            "ci": ci, "p_value": p, "excludes_zero": None if p is None else bool(p < 1 - confidence),
            "ci_excluded": excluded, "n_replicates": [len(a), len(b)]}


def replicated_paired_rates(y_true: Any, preds_a: Sequence[Any], preds_b: Sequence[Any], groups: pd.DataFrame, *,
                            n_boot: int = 1000, confidence: float = 0.95,
                            random_state: int | None = 0) -> dict[str, Any]:
    """Recipe A's mean accuracy (and balanced accuracy) minus recipe B's, overall and in every
    group of every single attribute, over their replicates on the same test rows: what a
    change to a model (a mitigation, a privacy guarantee) costs, and whom.

    The same machinery as `replicated_paired_differences` (replicate r of A paired with
    replicate r of B; the test rows resampled within the groups of each attribute, the same
    resample for every replicate of both sides; with one replicate per side the paired test-row
    bootstrap). Returns ``{"overall": {rate: entry}, "groups": {attribute: {group: {rate:
    entry}}}}`` with entry as in `replicated_paired_differences`; the overall rates are
    resampled within the first attribute's groups.
    """
    y = check_predictions(y_true, np.zeros_like(np.asarray(y_true)), None)[0]
    dec_a, dec_b = _decisions(y, preds_a, "model A"), _decisions(y, preds_b, "model B")
    frame = check_sensitive(groups, len(y))
    check_settings(n_boot, confidence)
    Ra, Rb = dec_a.shape[0], dec_b.shape[0]
    result: dict[str, Any] = {"overall": {}, "groups": {}}
    for index, part in enumerate(p for p in partitions(frame) if len(p.attributes) == 1):
        G = part.n_groups
        obs_a, obs_b = _observed_counts(y, dec_a, part.codes, G), _observed_counts(y, dec_b, part.codes, G)
        counts = None
        if n_boot:
            draw = _joint_resampled_counts if Ra == Rb == 1 else _resampled_counts
            counts = draw(y, np.vstack([dec_a, dec_b]), part.codes, G, n_boot, stream(random_state, part.key))
        scopes = [(label, (slice(None), g)) for g, label in enumerate(part.labels)]
        if index == 0:  # overall: every group summed (each attribute's groups cover every row)
            scopes.append((None, None))
        for label, pick in scopes:
            point_a = _rates(obs_a.sum(axis=1) if pick is None else obs_a[pick])       # (R,)
            point_b = _rates(obs_b.sum(axis=1) if pick is None else obs_b[pick])
            boots = None
            if counts is not None:
                boot = counts.sum(axis=2) if pick is None else counts[:, :, pick[1]]  # (B, Ra + Rb, 4)
                boots = _rates(boot)
            entry = {rate: _paired_entry(point_a[rate], point_b[rate],
                                         None if boots is None else boots[rate][:, :Ra],
                                         None if boots is None else boots[rate][:, Ra:], confidence)
                     for rate in PAIRED_RATES}
            if label is None:
                result["overall"] = entry
            else:
                result["groups"].setdefault(part.key, {})[label] = entry
    return result
