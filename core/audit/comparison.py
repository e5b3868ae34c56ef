"""Paired bootstrap comparison of two models' gaps on the same test rows.

"Did model B narrow the gap?" needs the two models judged on the same resampled rows: a
replicate draws each group's joint cells (pred_a, pred_b, y), from which both models'
confusion counts follow, and the difference of their gaps is taken replicate by replicate.
The gaps are core.audit.metrics' formulas, the partitions and input checks
core.audit.fairness', the draws and intervals core.audit.resampling's; docs/metrics.md.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.audit.fairness import check_predictions, check_sensitive, partitions, reference_index
from core.audit.metrics import MIN_CLASS_ROWS, gap_values, headline_groups, num
from core.audit.resampling import (
    check_settings,
    count_replicates,
    json_interval,
    percentile_interval,
    stream,
)
from core.vocabulary import GAPS

# Joint cell of a row: 4 * pred_a + 2 * pred_b + y. These map it to each model's
# [TP, FP, TN, FN] cell, so both models' counts come from one draw of the same rows.
_JOINT = [(pa, pb, y) for pa in (0, 1) for pb in (0, 1) for y in (0, 1)]


def _to_model(which: int) -> np.ndarray:
    """(8, 4) 0/1 matrix taking joint-cell counts to model `which`'s (0: A, 1: B) counts."""
    m = np.zeros((8, 4), dtype=np.int64)
    for j, cell in enumerate(_JOINT):
        pred, y = cell[which], cell[2]
        m[j, (0 if y else 1) if pred else (3 if y else 2)] = 1
    return m


def paired_gap_differences(y_true: Any, y_pred_a: Any, y_pred_b: Any,
                           sensitive: pd.DataFrame, *, n_boot: int = 1000,
                           confidence: float = 0.95,
                           reference_groups: Mapping[str, str] | None = None,
                           random_state: int | None = 0, min_group_size: int = 30,
                           min_class_rows: int = MIN_CLASS_ROWS) -> dict[str, dict[str, dict[str, Any]]]:
    """Bootstrap CI of (model A's gap - model B's gap) on the same test rows.

    Every row is counted in one of 8 joint cells (pred_a, pred_b, y); a replicate draws each
    group's joint cells ~ Multinomial(n_g, observed proportions), which resamples the same
    rows for both models. Replicate b of the difference is gap_A(b) - gap_B(b). The gaps are
    the headline gaps of `audit_fairness` (the same groups, by `min_group_size` and
    `min_class_rows`), so `model_a` / `model_b` are the gaps the audit reports.

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
        # group sizes and classes depend on y only: the same groups for both models
        used = headline_groups(counts_a, min_group_size=min_group_size, min_class_rows=min_class_rows)
        ref = reference_index(part, reference_groups)
        point_a, point_b = gap_values(counts_a, used, ref), gap_values(counts_b, used, ref)
        if n_boot:
            reps = count_replicates(joint, n_boot, stream(random_state, part.key))
            reps_a, reps_b = gap_values(reps @ to_a, used, ref), gap_values(reps @ to_b, used, ref)
        entry = {}
        for k in GAPS:
            diff = float(point_a[k] - point_b[k])
            ci, excluded = None, 0
            if n_boot:
                lo, hi, ex = percentile_interval(reps_a[k] - reps_b[k], confidence)
                ci, excluded = json_interval(diff, lo, hi, ex)
            entry[k] = {
                "model_a": num(point_a[k]), "model_b": num(point_b[k]),
                "difference": num(diff), "ci": ci,
                "excludes_zero": None if ci is None else bool(ci[0] > 0 or ci[1] < 0),
                "ci_excluded": excluded,
            }
        result[part.key] = entry
    return result
