"""The audit of models Equiscope did not train: a table of their predictions (scores or
decisions), or an outside model file applied to the study's test rows.

    run_uploaded_audit(config, out_dir)   ->  report (also report.json, predictions.parquet, report.html)

Nothing is trained, so each model is audited by the same machinery as a trained model's
replicate 0 (core.audit.per_model.audit_model, without a representation), and the paired
comparisons between the models are core.run.replicates' with one "replicate" per side (the
test-row resampling of core.audit.replicated, exactly the paired bootstrap of two fixed models).
Every model is compared with the reference model (`reference`, by default the first one named):
the question a review of uploaded models asks is "does the candidate treat the groups better or
worse than the model in use?", and a fixed reference keeps the number of verdicts, and so Holm's
family (core.audit.multiplicity), at models - 1 per gap. The comparison is stored under the
report key every page reads (`compared_with_supervised`); report["study"]["reference"] names
the model it is made against.

The run folder is the same contract as a training audit's (core.results.folder), with
report["study"]["kind"] = "predictions" (or "outside-model" for a model file audited alone),
models with "pretraining": None and "strategy": "uploaded", and no training sections.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.audit.per_model import ModelTask, audit_model
from core.data.predictions import PredictionsTable, UploadedModel, read_predictions
from core.data.profile import negative_label
from core.data.source import DataSource, open_source
from core.data.spec import DatasetSpec
from core.data.study import Study
from core.errors import Cancelled, InputError
from core.learning.outside import OutsideModel, load_outside_model
from core.results import folder
from core.run.assemble import model_entry, uploaded_report
from core.run import pipeline
from core.run.replicates import ReplicateTask, audit_replicates
from core.run.study_kind import OUTSIDE_MODEL_STUDY
from core.vocabulary import DECISION_THRESHOLD, INTERSECTION, PREDICTIONS_STUDY, UPLOADED

Event = Callable[[dict], None]


@dataclass
class UploadedConfig:
    """Every knob of an audit of uploaded predictions (`scores`, `decisions`) or of an outside
    model file (`model`, with the reviewer's `trust_types`); JSON-able, stored with the run.
    `kind` marks the config in the workspace, where training audits keep AuditConfig's."""

    data: str
    target: str
    sensitive: list[str]
    positive: str | None = None
    scores: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    threshold: float = DECISION_THRESHOLD
    reference: str | None = None
    model: str | None = None
    trust_types: list[str] = field(default_factory=list)
    n_boot: int = 1000
    confidence: float = 0.95
    min_group_size: int = 30
    min_class_rows: int = 10
    seed: int = 0
    kind: str = PREDICTIONS_STUDY

    def validate(self) -> None:
        if self.model and (self.scores or self.decisions):
            raise InputError("A model file and model columns were both given",
                             "Audit either a model file (--model) or a predictions table (--scores/--decisions)")
        if self.n_boot < 0:
            raise InputError(f"--n-boot must be 0 or more, got {self.n_boot}", "Use 1000 for reporting, 0 to skip CIs")
        if not 0.5 <= self.confidence < 1:
            raise InputError(f"The confidence must lie in [0.5, 1), got {self.confidence}", "Use 0.95")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UploadedConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


def is_uploaded_config(config: dict) -> bool:
    """True for a stored run config of this module (a training audit's has no `kind`)."""
    return config.get("kind") in (PREDICTIONS_STUDY, OUTSIDE_MODEL_STUDY)


@dataclass(frozen=True)
class _Uploaded:
    """What model_entry reads of a model: an uploaded one has no training facts."""

    name: str
    pretraining: None = None
    strategy: str = UPLOADED
    n_trainable_params: None = None
    calibration: None = None


def run_uploaded_audit(config: UploadedConfig, out_dir: Path, *, on_event: Event | None = None,
                       should_stop: Callable[[], bool] | None = None, source: DataSource | None = None) -> dict:
    """Audit the uploaded models into `out_dir` and return the report (also in report.json)."""
    config.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _event(on_event, 0.02, "Reading the predictions" if not config.model else "Applying the model file")
    source = source or open_source(config.data)
    if config.model:
        table, study, model = _outside_model_table(config, source)
        study.save(out_dir)  # Explain reopens the study, and the model from the run's own copy of its file
        kept = folder.model_dir(out_dir, table.models[0].name)
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config.model, kept / Path(config.model).name)
    else:
        study, model = None, None
        table = read_predictions(source, config.target, config.sensitive, scores=config.scores,
                                 decisions=config.decisions, positive=config.positive, threshold=config.threshold,
                                 min_group_size=config.min_group_size)
    reference = _reference(config.reference, [m.name for m in table.models])
    entries = audit_uploaded(table.y, table.groups, table.data.group_order, table.models, reference, config,
                             on_event=on_event, should_stop=should_stop)
    folder.write_predictions(out_dir / folder.PREDICTIONS, table.row_ids, table.groups, table.y,
                             {m.name: _stored_scores(m) for m in table.models},
                             {m.name: m.decisions for m in table.models})
    if model is not None:  # an outside model: the study's validation rows, for the fair threshold what-ifs
        _write_validation(out_dir, study, model)
    report = uploaded_report(_study_summary(config, table, reference, study), entries, config.to_dict(),
                             n_boot=config.n_boot, confidence=config.confidence, notes=source.notes + table.data.notes,
                             warnings=table.data.warnings)
    folder.write_report(out_dir, report)
    pipeline._write_html(report, out_dir, on_event)  # the same safety net as a training audit's
    folder.write_timings(out_dir, {"audit_s": time.perf_counter() - started})
    if on_event is not None:
        on_event({"stage": "done", "fraction": 1.0, "message": "Audit finished"})
    return report


def audit_uploaded(y: np.ndarray, groups: pd.DataFrame, group_order: dict[str, list[str]],
                   models: Sequence[UploadedModel], reference: str | None, config: UploadedConfig, *,
                   on_event: Event | None = None, should_stop: Callable[[], bool] | None = None) -> list[dict]:
    """Each model's report entry: its audit on these rows and, but for the reference itself,
    the paired comparison of its gaps with the reference's (one "replicate" per side)."""
    strata = groups.astype(str).agg(INTERSECTION.join, axis=1).to_numpy()
    decisions = {m.name: m.decisions for m in models}
    entries = []
    for index, model in enumerate(models):
        if should_stop is not None and should_stop():
            raise Cancelled()
        _event(on_event, 0.05 + 0.9 * index / len(models), f"Auditing {model.name}")
        result = audit_model(ModelTask(
            name=model.name, y_true=y, y_pred=model.decisions, y_score=model.scores, groups=groups, embedding=None,
            supervised_embedding=None, is_baseline=model.name == reference, strata=strata, n_boot=config.n_boot,
            confidence=config.confidence, min_group_size=config.min_group_size, umap=False, seed=config.seed,
            min_class_rows=config.min_class_rows))
        replicated = audit_replicates(ReplicateTask(
            name=model.name, seeds=[config.seed], y_true=y, preds=[model.decisions], scores=[model.scores],
            groups=groups, supervised_preds=None if reference in (None, model.name) else [decisions[reference]],
            n_boot=config.n_boot, confidence=config.confidence, min_group_size=config.min_group_size,
            seed=config.seed))
        entries.append(model_entry(_Uploaded(model.name), result, {}, group_order, replicated))
    return entries


def _reference(chosen: str | None, names: list[str]) -> str | None:
    """The model every other one is compared with: the reviewer's choice, else the first named;
    none with a single model (nothing to compare)."""
    if chosen is not None and chosen not in names:
        raise InputError(f"The reference model '{chosen}' is not one of the audited models",
                         f"Choose one of: {', '.join(names)}")
    if len(names) < 2:
        return None
    return chosen or names[0]


def _stored_scores(model: UploadedModel) -> np.ndarray:
    """The score column of predictions.parquet: NaN for a model that gave decisions only (every
    reader of the run folder finds its models by their score columns)."""
    return model.scores if model.scores is not None else np.full(len(model.decisions), np.nan)


def _study_summary(config: UploadedConfig, table: PredictionsTable, reference: str | None,
                   study: Study | None) -> dict:
    spec = table.data.spec
    summary = {"kind": config.kind, "dataset": table.source.name, "dataset_sha256": table.source.sha256,
               "target": spec.target, "positive_label": spec.positive_label, "sensitive": list(spec.sensitive),
               "negative_label": negative_label(table.data.frame[spec.target], spec.positive_label),
               "n_train": 0 if study is None else int(len(study.split.labelled_train)),
               "n_test": int(len(table.row_ids)), "n_validation": 0, "n_pretrain": 0,
               # every labelled row of the table is audited (Compare groups runs by this share)
               "label_fraction": 1.0, "seed": int(config.seed),
               "features": [] if study is None else list(study.data.features),
               "uploaded": {m.name: "scores" if m.scores is not None else "decisions" for m in table.models},
               "threshold": float(table.threshold), "reference": reference}
    if config.model:
        summary["model_file"] = Path(config.model).name
    return summary


def _outside_model_table(config: UploadedConfig, source: DataSource) -> tuple[PredictionsTable, Study, OutsideModel]:
    """An outside model file applied to the study's test rows (the split a training audit of the
    same table and seed would use), as a predictions table of one score column."""
    study = Study.create(source, DatasetSpec(target=config.target, sensitive=tuple(config.sensitive),
                                             positive_label=config.positive, min_group_size=config.min_group_size),
                         seed=config.seed)
    model = load_outside_model(config.model, trust_types=config.trust_types)
    test = study.split.test
    scores = model.predict_proba(study.data.frame.iloc[test], positive_label=study.spec.positive_label)
    data = study.data
    tested = type(data)(spec=data.spec, frame=data.frame.iloc[test].reset_index(drop=True), y=data.y[test],
                        groups=data.groups.iloc[test].reset_index(drop=True), features=data.features,
                        kinds=data.kinds, pii=data.pii, notes=list(data.notes) + model.notes,
                        warnings=list(data.warnings), group_order=data.group_order)
    uploaded = UploadedModel(name=model.name, decisions=folder.decisions(scores), scores=scores)
    return PredictionsTable(source=source, data=tested, row_ids=study.row_ids(test), models=[uploaded],
                            threshold=DECISION_THRESHOLD), study, model


def _write_validation(out_dir: Path, study: Study, model: OutsideModel) -> None:
    validation = study.split.validation
    scores = model.predict_proba(study.data.frame.iloc[validation], positive_label=study.spec.positive_label)
    folder.write_predictions(out_dir / folder.VALIDATION_PREDICTIONS, study.row_ids(validation),
                             study.groups(validation), study.labels(validation), {model.name: scores})


def _event(on_event: Event | None, fraction: float, message: str) -> None:
    if on_event is not None:
        on_event({"stage": "audit", "fraction": round(fraction, 4), "message": message})


def audit_job(context) -> dict:
    """Job entry point of kind "audit" (core.workspace.jobs): a training audit goes to
    core.run.pipeline; an uploaded config is audited here, into the run's folder. Returns the
    headline metrics."""
    if not is_uploaded_config(context.config):
        return pipeline.audit_job(context)
    config = UploadedConfig.from_dict(context.config)
    report = run_uploaded_audit(config, context.run_dir, on_event=context.report, should_stop=context.should_stop)
    return pipeline.headline(report)
