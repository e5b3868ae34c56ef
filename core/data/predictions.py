"""A table of a model's predictions (no model, no training): the outcome, the sensitive
columns and one or more model columns, validated for a predictions-only audit.

    read_predictions(source, target, sensitive, scores=..., decisions=..., ...)  ->  PredictionsTable

A model column holds either scores (the probability of the positive label, in [0, 1]; the
decision is `score >= threshold`) or decisions (0/1, true/false, or the target's own labels:
the positive label is 1, any other label 0). Each model is named after its column. Every
labelled row is a test row: nothing is split and nothing is trained.

The outcome and the sensitive columns are read by core.data.spec.prepare, exactly as in a
training audit (positive label, numeric attributes in bins, "(missing)" groups, small-group
warnings), so both kinds of audit group the same table the same way. Rows without an
outcome cannot be audited and are left out, with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.data.source import DataSource
from core.data.spec import DatasetSpec, PreparedData, _require_column, prepare
from core.errors import InputError
from core.vocabulary import DECISION_THRESHOLD

MAX_MODELS = 20
MIN_ROWS = 50
"""Fewest labelled rows a predictions audit accepts: below it every group's interval spans
most of [0, 1] and the audit says nothing."""

_TRUE_WORDS = {"1", "1.0", "true", "yes", "y", "t"}
_FALSE_WORDS = {"0", "0.0", "false", "no", "n", "f"}


@dataclass(frozen=True)
class UploadedModel:
    """One model column: its 0/1 decisions per row and, for a score column, its scores."""

    name: str
    decisions: np.ndarray        # int64 0/1
    scores: np.ndarray | None    # float64 in [0, 1], or None for a decision column


@dataclass
class PredictionsTable:
    """A validated predictions table: `data` holds the labelled rows (outcome, groups, notes),
    `row_ids` their positions in the file, `models` the model columns in the order given."""

    source: DataSource
    data: PreparedData
    row_ids: np.ndarray
    models: list[UploadedModel]
    threshold: float

    @property
    def y(self) -> np.ndarray:
        return self.data.y.astype(np.int64)

    @property
    def groups(self) -> pd.DataFrame:
        return self.data.groups.reset_index(drop=True)


def read_predictions(source: DataSource, target: str, sensitive: Sequence[str], *,
                     scores: Sequence[str] = (), decisions: Sequence[str] = (), positive: str | None = None,
                     threshold: float = DECISION_THRESHOLD, min_group_size: int = 30) -> PredictionsTable:
    """Validate the predictions table of `source`; InputError with the fix for anything wrong."""
    frame = source.frame.reset_index(drop=True)
    columns = [str(c) for c in frame.columns]
    names = list(scores) + list(decisions)
    _check_model_columns(names, columns, target, sensitive)
    if not 0.0 < float(threshold) < 1.0:
        raise InputError(f"--threshold must lie between 0 and 1, got {threshold}",
                         "Give the score at which a case counts as positive, e.g. 0.5")
    labelled = frame[target].notna().to_numpy()
    notes = []
    if not labelled.all():
        notes.append(f"{int((~labelled).sum())} rows have no '{target}'; a predictions audit needs the outcome, "
                     "so they are left out.")
    rows = np.flatnonzero(labelled)
    if len(rows) < MIN_ROWS:
        raise InputError(f"The predictions table has {len(rows)} rows with an outcome; an audit needs at least "
                         f"{MIN_ROWS}", "Add rows: each group needs enough cases for its numbers to mean anything")
    kept = frame.iloc[rows].reset_index(drop=True)
    # prepare() reads the outcome and the groups as a training audit does; the features it
    # picks are not used (a predictions audit has no model inputs), only listed to satisfy it.
    data = prepare(kept, DatasetSpec(target=target, sensitive=tuple(sensitive), positive_label=positive,
                                     features=tuple(names) + tuple(sensitive), min_group_size=min_group_size))
    data.notes[:0] = notes
    models = [_score_model(kept[name], name, threshold) for name in scores]
    models += [_decision_model(kept[name], name, kept[target], data) for name in decisions]
    return PredictionsTable(source=source, data=data, row_ids=rows.astype(np.int64), models=models,
                            threshold=float(threshold))


def _check_model_columns(names: list[str], columns: list[str], target: str, sensitive: Sequence[str]) -> None:
    if not names:
        raise InputError("No model column given",
                         "Name the score columns (--scores) or the decision columns (--decisions) to audit")
    if len(names) > MAX_MODELS:
        raise InputError(f"{len(names)} model columns given; a predictions audit takes at most {MAX_MODELS}",
                         "Audit the models in several runs")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"The model column '{repeated[0]}' is named twice", "Name each model column once")
    for name in names:
        _require_column(name, columns, "model")
        if name == target or name in sensitive:
            role = "the target" if name == target else "a sensitive attribute"
            raise InputError(f"The model column '{name}' is also {role}",
                             "A model column holds the model's scores or decisions, not the outcome or the groups")


def _score_model(series: pd.Series, name: str, threshold: float) -> UploadedModel:
    """A score column: numeric, complete, within [0, 1]."""
    values = pd.to_numeric(series, errors="coerce")
    not_numbers = int((values.isna() & series.notna()).sum())
    if not_numbers:
        example = series[values.isna() & series.notna()].iloc[0]
        raise InputError(f"The score column '{name}' has {not_numbers} values that are not numbers "
                         f"(such as '{example}')",
                         "Scores are probabilities of the positive outcome; pass a 0/1 or label column as "
                         "--decisions")
    missing = int(values.isna().sum())
    if missing:
        raise InputError(f"The score column '{name}' has {missing} missing values",
                         "Every row needs a score: fill them in, or remove those rows from the file")
    scores = values.to_numpy(dtype=np.float64)
    if not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
        raise InputError(f"The score column '{name}' has values outside [0, 1] (from {scores.min():g} to "
                         f"{scores.max():g})",
                         "Scores must be probabilities of the positive outcome; rescale them, or pass "
                         "decisions as --decisions")
    return UploadedModel(name=name, decisions=(scores >= threshold).astype(np.int64), scores=scores)


def _decision_model(series: pd.Series, name: str, target: pd.Series, data: PreparedData) -> UploadedModel:
    """A decision column: 0/1 (or true/false, yes/no), or the target's own labels."""
    if series.isna().any():
        raise InputError(f"The decision column '{name}' has {int(series.isna().sum())} missing values",
                         "Every row needs the model's decision: fill them in, or remove those rows")
    numbers, outcome = pd.to_numeric(series, errors="coerce"), pd.to_numeric(target, errors="coerce")
    if numbers.notna().all() and outcome.notna().all() and set(numbers) <= set(outcome):
        # the target's own (numeric) labels, also when they are 0/1 themselves: 2.0 is the label 2
        positive = float(data.spec.positive_label)
        return UploadedModel(name=name, decisions=(numbers == positive).to_numpy(dtype=np.int64), scores=None)
    text, labels = series.astype(str).str.strip(), set(target.astype(str).str.strip())
    if set(text) <= labels:  # the target's own labels, compared as core.data.spec reads them
        return UploadedModel(name=name, decisions=(text == str(data.spec.positive_label)).to_numpy(dtype=np.int64),
                             scores=None)
    lowered = text.str.lower()
    if set(lowered) <= _TRUE_WORDS | _FALSE_WORDS:
        return UploadedModel(name=name, decisions=lowered.isin(_TRUE_WORDS).to_numpy(dtype=np.int64), scores=None)
    unknown = sorted(set(text) - labels)[:3]
    raise InputError(f"The decision column '{name}' holds values that are neither 0/1 nor labels of the target "
                     f"({', '.join(repr(v) for v in unknown)})",
                     "Decisions are 0/1 or the outcome's labels; pass probability-like scores as --scores")
