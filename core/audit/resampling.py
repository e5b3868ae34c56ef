"""Vectorised percentile bootstrap: replicates of confusion counts and scores, and intervals.

Resample counts, not rows. With stratification (the default) each group keeps its size n_g:

* confusion-count metrics: a group's replicate is one multinomial draw of its four cells
  ``[TP, FP, TN, FN] ~ Multinomial(n_g, observed cell proportions)``, which has exactly the
  distribution of the confusion counts of n_g rows drawn with replacement from the group;
  all B replicates of all groups are one ``Generator.multinomial`` call;
* score metrics (ROC AUC, calibration error): per-row multiplicities ``W`` of shape
  (B, n_g) (row i drawn W[b, i] times, each row of W summing to n_g: n_g uniform picks,
  then one bincount) feed the weighted formulas of `core.audit.metrics` (the ECE's are
  core.learning.calibration's); rows are sorted once, and replicates are processed in
  blocks to bound memory. These draws are separate
  from the count draws: each metric's interval is a bootstrap interval of that metric, and
  no gap mixes a count metric with a score metric.

Replicates where a value is undefined (NaN, e.g. a resample with no positives) are left out
of the quantiles and counted in ``ci_excluded``. The interval is ``[q_{(1-c)/2}, q_{(1+c)/2}]``
of the remaining replicates, linear interpolation (numpy's and fairlearn's default).

`stratify=False` resamples n rows from all rows instead (the group sizes vary, as in
fairlearn's MetricFrame bootstrap); it is there to compare like with like.

Each partition draws from its own stream, ``SeedSequence(random_state, spawn_key=(crc32(key),))``,
so adding an attribute does not change the intervals of the others. The summaries that use
these replicates are core.audit.fairness (one model) and core.audit.comparison (two models).
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np

from core.audit.metrics import auc_from_layout, auc_layout, confusion_counts, count_metrics
from core.errors import InputError
from core.learning.calibration import calibration_residuals, ece_from_residuals
from core.vocabulary import SCORE_METRICS

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


def json_interval(point: float, lo: float, hi: float, excluded: int) -> tuple[list | None, int]:
    """The report's (ci, ci_excluded): ``[lo, hi]``, or None where the point value or the
    interval is undefined."""
    if np.isnan(point) or np.isnan(lo):
        return None, int(excluded)
    return [float(lo), float(hi)], int(excluded)


def group_replicates(y: np.ndarray, p: np.ndarray, s: np.ndarray | None, codes: np.ndarray,
                     n_groups: int, n_boot: int, rng: np.random.Generator, *,
                     stratify: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Replicated confusion counts (B, G, 4) and every group metric's replicates (B, G)."""
    counts = confusion_counts(y, p, codes, n_groups)
    reps = count_replicates(counts, n_boot, rng, stratify=stratify)
    metrics = count_metrics(reps)
    metrics.update(score_replicates(y, s, codes, n_groups, n_boot, rng, stratify=stratify))
    return reps, metrics
