"""Threshold what-ifs on a finished run's stored scores (core.audit.thresholds): hand-set
per-group thresholds, or thresholds fitted for a fairness constraint, and how to read them.

    manual_whatif(results, model, partition, thresholds)   judged on the test rows
    fair_whatif(results, model, partition, constraint)     fitted on validation, judged on test
    whatif_groups(result) / whatif_gaps(result)            before and after, as tables
    describe_rule(rule)                                    a per-group decision rule in words

Nothing is retrained: every what-if re-decides the run's stored scores (predictions.parquet and
validation_predictions.parquet), so the model and its scores are exactly the audited ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core.audit.thresholds import evaluate_thresholds, optimize_thresholds
from core.errors import InputError
from core.results.tables import number
from core.results.folder import RunResults, partition_labels, score_column
from core.vocabulary import DRAWN_DECISIONS, PREDICTIONS_STUDY

#: The per-group rates a what-if table shows before and after.
WHATIF_METRICS = ("accuracy", "tpr", "fpr", "selection_rate")


def threshold_rows(results: RunResults, model: str, partition: str,
                   split: str = "test") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, labels, groups) of the run's test rows, or of its validation rows (`split="validation"`)."""
    frame = results.predictions if split == "test" else results.validation
    if frame is None and results.view.kind == PREDICTIONS_STUDY:  # uploaded predictions: every row is a test row
        raise InputError("Uploaded predictions have no validation rows to fit fair thresholds on, apart from the "
                         "rows they are judged on", "Set the thresholds by hand")
    if frame is None:
        raise InputError("This run has no validation predictions to fit thresholds on",
                         "Run the audit again with this version of Equiscope")
    if score_column(model) not in frame.columns:
        raise InputError(f"No scores of model '{model}' in this run", "Choose another model")
    check_decides_at_threshold(results, model)
    if frame[score_column(model)].isna().all():  # an uploaded decision column: nothing to threshold
        raise InputError(f"The model '{model}' was uploaded as decisions, without scores to set thresholds on",
                         "Choose a model uploaded with scores")
    return (frame[score_column(model)].to_numpy(np.float64), frame["y_true"].to_numpy(np.int64),
            partition_labels(frame, partition))


def check_decides_at_threshold(results: RunResults, model: str) -> None:
    """InputError for a model whose decisions are a seeded draw from its score (report entry
    `decisions: "drawn"`, fairlearn's randomized rules): a threshold on that score is not how it
    decides, so a what-if would describe a model that was not audited."""
    if results.view.model(model).entry.get("decisions") == DRAWN_DECISIONS:
        raise InputError(f"The model '{model}' does not decide at a threshold: each row's decision is drawn at "
                         "random, with a fixed seed, from its score (a randomized rule of fairlearn), so a "
                         "threshold on that score would describe a model that was not audited",
                         "Choose its base model, or another model that decides at a threshold")


def manual_whatif(results: RunResults, model: str, partition: str, thresholds: Mapping[str, float]) -> dict:
    """Hand-set per-group thresholds judged on the test rows (`evaluate_thresholds`): per-group
    metrics, gaps, accuracy, and `accuracy_cost` against one threshold of 0.5 for everyone."""
    return evaluate_thresholds(dict(thresholds), evaluate_on=threshold_rows(results, model, partition))


def fair_whatif(results: RunResults, model: str, partition: str, constraint: str) -> dict:
    """Per-group thresholds meeting `constraint` ("demographic_parity", "equal_opportunity",
    "equalized_odds"), fitted on the validation rows and judged on the test rows
    (`optimize_thresholds`, decisions drawn with the run's seed). `randomized` says whether
    some rows are decided by a weighted coin (equalized odds usually needs that)."""
    return optimize_thresholds(constraint, fit_on=threshold_rows(results, model, partition, "validation"),
                               evaluate_on=threshold_rows(results, model, partition), random_state=results.view.seed)


def whatif_groups(result: dict) -> pd.DataFrame:
    """Per group, before (one threshold of 0.5) and after the what-if: n, accuracy, tpr, fpr,
    selection_rate as `<metric>_before` / `<metric>_after` (NaN where undefined)."""
    before = {g["group"]: g for g in result["baseline"]["groups"]}
    rows = []
    for group in result["groups"]:
        row: dict[str, Any] = {"group": group["group"], "n": group["n"]}
        for metric in WHATIF_METRICS:
            row[f"{metric}_before"] = number(before[group["group"]][metric])
            row[f"{metric}_after"] = number(group[metric])
        rows.append(row)
    return pd.DataFrame(rows)


def whatif_gaps(result: dict) -> pd.DataFrame:
    """Gaps and overall accuracy before and after the what-if: columns measure, before, after, change."""
    rows = [{"measure": "accuracy", "before": result["baseline"]["accuracy"], "after": result["accuracy"]}]
    for gap, after in result["gaps"].items():
        rows.append({"measure": gap, "before": number(result["baseline"]["gaps"][gap]), "after": number(after)})
    table = pd.DataFrame(rows)
    table["change"] = table["after"] - table["before"]
    return table


def describe_rule(rule: Mapping) -> str:
    """A per-group decision rule in words: 'score >= 0.42', or a randomised mix of two
    thresholds, or (equalized odds) a share of rows decided by a coin."""
    parts = []
    for part in rule.get("thresholds") or []:  # in words, not "score > 0.561 for 26% of rows" (issue 17)
        threshold = part["threshold"]
        above = "at least" if part["operator"] == ">=" else "above"
        text = ("always predicted positive" if threshold == -math.inf else "never predicted positive"
                if threshold == math.inf else f"predicted positive when the model's score is {above} {threshold:.2f}")
        parts.append(text if part["probability"] >= 1 else
                     f"for a random {_share(part['probability'])} of the group's rows, {text}")
    text = "; ".join(parts) or "no rule"
    if rule.get("p_constant"):
        text += (f"; {_share(rule['p_constant'])} of rows decided by a coin that says positive with "
                 f"probability {_share(rule.get('constant_positive_rate') or 0)}")
    return text


def _share(p: float) -> str:
    """A probability as a share of rows: never rounded to a misleading 0% or 100%."""
    if 0 < p < 0.01:
        return "under 1%"
    if 0.99 < p < 1:
        return "over 99%"
    return f"{100 * p:.0f}%"
