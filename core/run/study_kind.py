"""What a study's audits say about its table, for the Train page: a table of a model's
predictions (its columns are scores and decisions, not features: nothing to train on it), or a
table an outside model file was audited on (Equiscope's own models may be trained beside it).

Light on purpose (the vocabulary only): the Train page reads it while drawing, and drawing the
page must not import torch, which core.run.uploaded does.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.vocabulary import PREDICTIONS_STUDY

#: report["study"]["kind"] (and a run config's "kind") of an outside model file audited alone.
OUTSIDE_MODEL_STUDY = "outside-model"


def is_predictions_study(run_configs: Iterable[dict]) -> bool:
    """True when one of the study's audits is a predictions audit: its table is predictions."""
    return any(config.get("kind") == PREDICTIONS_STUDY for config in run_configs)


def outside_model_of(run_configs: Iterable[dict]) -> dict | None:
    """The model file and accepted types of the study's latest outside-model audit, as
    {"model": path, "trust_types": [...]}, for a training audit to put beside its own models;
    None without one. `run_configs` oldest first, as the workspace lists runs."""
    found = [c for c in run_configs if c.get("kind") == OUTSIDE_MODEL_STUDY and c.get("model")]
    if not found:
        return None
    return {"model": str(found[-1]["model"]), "trust_types": list(found[-1].get("trust_types") or [])}
