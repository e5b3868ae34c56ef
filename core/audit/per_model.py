"""Everything measured about one model on the test rows, as one self-contained task.

The pipeline audits every model the same way and the models do not depend on each other, so
each model's audit is a picklable `ModelTask` run by `audit_model`, in the pipeline's process
or in a worker process (core.run.pipeline runs them on every core). Every random draw is seeded
from the task alone, so the result is the same wherever and in whatever order it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.audit.fairness import audit_fairness
from core.audit.metrics import MIN_CLASS_ROWS
from core.audit.knn import knn_accuracy_by_group
from core.audit.representation import attribute_leakage, per_group_cka, project_umap


@dataclass(frozen=True)
class ModelTask:
    """The inputs of one model's audit (test rows only)."""

    name: str
    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray
    groups: pd.DataFrame                 # one column per sensitive attribute
    embedding: np.ndarray | None         # the model's test-row embeddings (None: a model without one, uploaded)
    supervised_embedding: np.ndarray | None  # the supervised baseline's, for CKA
    is_baseline: bool                    # the supervised baseline itself: no CKA with itself
    strata: np.ndarray                   # intersection label per row (UMAP display subsample)
    n_boot: int
    confidence: float
    min_group_size: int
    umap: bool
    seed: int
    min_class_rows: int = MIN_CLASS_ROWS  # positives (negatives) a group needs in the headline TPR (FPR) gaps


def audit_model(task: ModelTask) -> dict:
    """Fairness with bootstrap CIs, representation (leakage probe, kNN accuracy, CKA with the baseline) and the UMAP layout.

    The comparison with the supervised baseline is made over every training replicate
    (core.run.replicates), not here. Returns {"fairness", "representation",
    "umap": (coords, row positions) or None}.
    """
    fairness = audit_fairness(task.y_true, task.y_pred, task.y_score, task.groups, n_boot=task.n_boot,
                              confidence=task.confidence, min_group_size=task.min_group_size,
                              min_class_rows=task.min_class_rows, random_state=task.seed)
    if task.embedding is None:  # uploaded predictions or an outside model: nothing to probe or map
        return {"fairness": fairness, "representation": None, "umap": None}
    layout = project_umap(task.embedding, random_state=task.seed, strata=task.strata) if task.umap else None
    return {"fairness": fairness, "representation": representation(task), "umap": layout}


def representation(task: ModelTask) -> dict:
    """Per attribute: leakage probe, kNN accuracy of the label, and (not for the baseline) CKA."""
    compare = not task.is_baseline
    leakage, knn, cka = {}, {}, {}
    for attribute in task.groups.columns:
        leakage[attribute] = attribute_leakage(task.embedding, task.groups[attribute], random_state=task.seed)
        knn[attribute] = knn_accuracy_by_group(task.embedding, task.y_true, task.groups[attribute],
                                               random_state=task.seed)
        if compare:
            cka[attribute] = per_group_cka(task.embedding, task.supervised_embedding, task.groups[attribute])
    result = {"leakage": leakage, "knn_accuracy": knn}
    if compare:
        result["cka_with_supervised"] = cka
    return result
