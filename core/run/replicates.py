"""One model's training replicates audited together: what a re-run with another seed would say.

Every recipe is trained R times (core.run.config.replicate_seeds); replicate 0 is "the model
shown" and gets the full audit (core.audit.per_model). This task adds, per model, from the
test-row decisions of all R replicates:

    replicates                 each replicate's seed and point values (overall, gaps; n_boot = 0)
    aggregate                  per headline metric and per gap: mean, sd, min, max over the
                               replicates, and for the gaps the interval of
                               core.audit.replicated.replicated_gaps (training and test rows)
    compared_with_supervised   replicated_paired_differences against the supervised baseline's
                               replicates (with one replicate: test-row resampling alone)
    compared_with_base         the same against the model a variant changes (core.run.variants),
                               replicate r against replicate r; None for every other model
    compared_with_base_metrics a variant's accuracy and balanced accuracy against its base's,
                               overall and per group (replicated_paired_rates): what the change costs

A picklable task: the pipeline runs one per model on its worker pool, seeded from the task alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.audit.fairness import audit_fairness
from core.audit.replicated import (replicated_gaps, replicated_overall, replicated_paired_differences,
                                   replicated_paired_rates)

#: The overall metrics whose spread over replicates the aggregate reports.
HEADLINE_METRICS = ("accuracy", "balanced_accuracy", "roc_auc")


@dataclass(frozen=True)
class ReplicateTask:
    """One model's test-row outputs over its replicates (replicate 0 first)."""

    name: str
    seeds: Sequence[int]
    y_true: np.ndarray
    preds: Sequence[np.ndarray]
    scores: Sequence[np.ndarray]
    groups: pd.DataFrame
    supervised_preds: Sequence[np.ndarray] | None  # None for the baseline itself
    n_boot: int
    confidence: float
    min_group_size: int
    seed: int
    base_preds: Sequence[np.ndarray] | None = None  # a variant's base (core.run.variants); None otherwise


def audit_replicates(task: ReplicateTask) -> dict:
    """{"replicates": [...], "aggregate": {"overall", "gaps"}, "compared_with_supervised" and
    "compared_with_base" (each None where it does not apply)}."""
    points = [audit_fairness(task.y_true, pred, score, task.groups, n_boot=0, confidence=task.confidence,
                             min_group_size=task.min_group_size, random_state=task.seed)
              for pred, score in zip(task.preds, task.scores)]
    replicates = [{"seed": int(seed), "overall": points_only(point["overall"]),
                   "gaps": {key: points_only(gaps) for key, gaps in point["gaps"].items()}}
                  for seed, point in zip(task.seeds, points)]
    gaps = replicated_gaps(task.y_true, list(task.preds), task.groups, n_boot=task.n_boot,
                           confidence=task.confidence, random_state=task.seed, min_group_size=task.min_group_size)
    compared, compared_with_base = None, None
    if task.supervised_preds is not None:
        compared = replicated_paired_differences(task.y_true, list(task.preds), list(task.supervised_preds),
                                                 task.groups, n_boot=task.n_boot, confidence=task.confidence,
                                                 random_state=task.seed)
    base_metrics = None
    if task.base_preds is not None:
        compared_with_base = replicated_paired_differences(task.y_true, list(task.preds), list(task.base_preds),
                                                           task.groups, n_boot=task.n_boot,
                                                           confidence=task.confidence, random_state=task.seed)
        base_metrics = replicated_paired_rates(task.y_true, list(task.preds), list(task.base_preds), task.groups,
                                               n_boot=task.n_boot, confidence=task.confidence, random_state=task.seed)
    overall = {metric: spread([r["overall"].get(metric) for r in replicates]) for metric in HEADLINE_METRICS}
    covered = replicated_overall(task.y_true, list(task.preds), n_boot=task.n_boot, confidence=task.confidence,
                                 random_state=task.seed)
    for metric, entry in covered.items():
        overall[metric]["ci"] = entry["ci"]
    return {"replicates": replicates, "aggregate": {"overall": overall, "gaps": gaps},
            "compared_with_supervised": compared, "compared_with_base": compared_with_base,
            "compared_with_base_metrics": base_metrics}


def points_only(values: dict) -> dict:
    """The point values of an audit_fairness part (numbers, flags), without the parts that
    describe intervals or groups (ci, between, small_groups, ...): a replicate draws none."""
    return {k: v for k, v in values.items() if not isinstance(v, (dict, list))}


def spread(values: Sequence[float | None]) -> dict:
    """Mean, sample SD (None with one value), min and max of the defined values, and how many
    replicates gave one. The interval is set by the caller where one covers training
    (`replicated_overall`: accuracy, balanced accuracy); ROC AUC's stays replicate 0's bootstrap."""
    defined = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not len(defined):
        return {"mean": None, "sd": None, "min": None, "max": None, "ci": None, "n_replicates": 0}
    return {"mean": float(defined.mean()), "sd": float(defined.std(ddof=1)) if len(defined) > 1 else None,
            "min": float(defined.min()), "max": float(defined.max()), "ci": None, "n_replicates": int(len(defined))}
