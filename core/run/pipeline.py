"""The end-to-end audit, shared by `equiscope audit` and the dashboard's jobs.

    study (fixed split)  ->  SSL pretraining on unlabelled rows  ->  every fine-tuning
    strategy on the pretrained encoder + a supervised baseline of the same shape  ->
    on the same test rows: fairness (per group, intersections, bootstrap CIs, gaps),
    representation (leakage, UMAP, per-group CKA and kNN), paired gap comparisons
    against the supervised baseline  ->  report.json, predictions.parquet, report.html.

Everything is seeded: the same inputs and seed give an identical report.json on CPU
(timings go to timings.json, never into report.json). Files are written atomically;
`run_audit` writes into `out_dir` as it goes, so a caller that needs all-or-nothing output
(the CLI) gives it a temporary folder and renames it when the audit succeeds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core import __version__
from core.errors import InputError
from core.files import atomic_write

from core.run.parallel import Workers

if TYPE_CHECKING:  # imported where used: the CLI reads AuditConfig's defaults without loading scikit-learn
    from core.data import DatasetSpec
    from core.data.source import DataSource
    from core.data.study import Study

STRATEGIES = ("linear", "bn-stats", "bn-affine", "gradual", "full")
SUPERVISED = "supervised"
Event = Callable[[dict], None]

# Share of the progress bar each stage fills.
_STAGE_WEIGHTS = {"study": 0.02, "pretrain": 0.43, "finetune": 0.35, "audit": 0.20}


@dataclass
class AuditConfig:
    """Every knob of one audit; JSON-able (it is stored with the run and in the report)."""

    data: str
    target: str
    sensitive: list[str]
    positive: str | None = None
    features: list[str] | None = None
    include_pii: bool = False
    method: str = "scarf"
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    label_fraction: float = 1.0
    epochs: int = 10
    finetune_epochs: int = 20
    patience: int = 5
    batch_size: int = 512
    encoder: dict[str, Any] = field(default_factory=dict)
    method_params: dict[str, Any] = field(default_factory=dict)
    n_boot: int = 1000
    confidence: float = 0.95
    min_group_size: int = 30
    umap: bool = True
    seed: int = 0
    workers: int = 0  # processes for fine-tuning and auditing the models; 0: automatic (`workers_for`)
    threads: int = 1  # torch CPU threads for pretraining and fine-tuning (docs/decisions.md: why 1)

    def validate(self) -> None:
        from core.learning.ssl import get_method

        get_method(self.method)
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise InputError(f"Unknown strategy '{unknown[0]}'", f"Choose from: {', '.join(STRATEGIES)}")
        if not self.strategies:
            raise InputError("No fine-tuning strategy chosen", f"Choose from: {', '.join(STRATEGIES)}")
        if int(self.epochs) < 1 or int(self.finetune_epochs) < 1:
            raise InputError(f"Epochs must be at least 1, got {self.epochs}", "Use --epochs 1 or more")
        if not 0 < float(self.label_fraction) <= 1:
            raise InputError(f"Label fraction {self.label_fraction} is outside (0, 1]",
                             "Give a fraction such as 0.1 for 10% of the labels, or 1 for all")
        if int(self.threads) < 1:
            raise InputError(f"Threads must be 1 or more, got {self.threads}", "Use 1")
        if int(self.workers) < 0:
            raise InputError(f"Workers must be 0 (one per core) or more, got {self.workers}", "Use 0")
        if not self.sensitive:
            raise InputError("No sensitive attribute chosen", "Give --sensitive, e.g. --sensitive sex,race")

    def spec(self) -> DatasetSpec:
        from core.data import DatasetSpec

        return DatasetSpec(target=self.target, sensitive=tuple(self.sensitive), positive_label=self.positive,
                           features=None if self.features is None else tuple(self.features),
                           include_pii=self.include_pii, min_group_size=self.min_group_size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class _Progress:
    """Turns stage-local progress into one overall fraction and forwards events."""

    def __init__(self, on_event: Event | None) -> None:
        self.on_event = on_event
        self.done = 0.0

    def stage(self, name: str, fraction: float, **event: Any) -> None:
        if self.on_event is not None:
            overall = self.done + _STAGE_WEIGHTS[name] * min(max(fraction, 0.0), 1.0)
            self.on_event({"stage": name, "fraction": round(overall, 4), **event})

    def finish(self, name: str) -> None:
        self.done += _STAGE_WEIGHTS[name]


def run_audit(config: AuditConfig, out_dir: Path, *, on_event: Event | None = None,
              should_stop: Callable[[], bool] | None = None, source: DataSource | None = None) -> dict:
    """Run the whole audit into `out_dir` and return the report (also in report.json).

    From 2,000 test rows the models are fine-tuned and audited in spawned worker processes
    (`workers_for`), so a script that calls this must keep its top level under
    `if __name__ == "__main__":`, as Python's multiprocessing requires."""
    from core.audit.representation import warm_up_umap
    from core.learning.checkpoint import save_encoder
    from core.data import open_source
    from core.learning.ssl.views import FeatureLayout
    from core.data.study import Study
    from core.learning.pretrain import PretrainConfig, pretrain

    import torch

    config.validate()
    torch.set_num_threads(int(config.threads))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = _Progress(on_event)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    progress.stage("study", 0.0, message="Preparing the data and the split")
    source = source or open_source(config.data)
    study = Study.create(source, config.spec(), label_fraction=config.label_fraction, seed=config.seed)
    study.save(out_dir)
    timings["study_s"] = time.perf_counter() - started
    progress.finish("study")

    X = study.X
    split = study.split
    pretrain_config = PretrainConfig(method=config.method, method_params=dict(config.method_params),
                                     encoder=dict(config.encoder), epochs=config.epochs,
                                     batch_size=config.batch_size, seed=config.seed, device="cpu")
    warm_up = partial(warm_up_umap, len(split.test)) if config.umap else None
    with Workers(workers_for(config, len(split.test)), warm_up=warm_up) as workers:
        # The supervised baseline needs no encoder: in a worker process it trains during pretraining.
        supervised = _submit_finetune(workers, config, study, SUPERVISED, None,
                                      pretrain_config.encoder_config(X.shape[1]))
        t0 = time.perf_counter()

        def pretrain_event(event: dict) -> None:
            fraction = event.get("step", 0) / max(event.get("total_steps", 1), 1)
            progress.stage("pretrain", fraction, message=f"Pretraining {config.method}",
                           **{k: event[k] for k in ("epoch", "epochs", "step", "total_steps", "loss", "val_loss",
                                                     "rows_per_second") if k in event})

        pretrained = pretrain(X[split.pretrain], X[split.validation], FeatureLayout.from_encoder(study.encoder),
                              pretrain_config, on_event=pretrain_event, should_stop=should_stop,
                              checkpoint_dir=out_dir / "checkpoints")
        _stop_if_cancelled(pretrained.cancelled)
        save_encoder(out_dir / "encoder", pretrained.encoder, pretrain_config.to_dict())
        timings["pretrain_s"] = time.perf_counter() - t0
        progress.finish("pretrain")

        t0 = time.perf_counter()
        futures = [_submit_finetune(workers, config, study, strategy, pretrained.encoder, None)
                   for strategy in config.strategies] + [supervised]
        models = _gather_finetuned(workers, futures, config, progress, should_stop)
        for model in models:
            model.save(out_dir / "models" / model.name)
        timings["finetune_s"] = time.perf_counter() - t0
        progress.finish("finetune")

        t0 = time.perf_counter()
        report = audit_models(config, study, models, pretrained, out_dir, progress, should_stop, workers)
    timings["audit_s"] = time.perf_counter() - t0
    atomic_write(out_dir / "report.json", json.dumps(report, indent=2, sort_keys=False))
    _write_html(report, out_dir, on_event)
    timings["total_s"] = time.perf_counter() - started
    atomic_write(out_dir / "timings.json", json.dumps({k: round(v, 3) for k, v in timings.items()}, indent=2))
    progress.finish("audit")
    if on_event is not None:
        on_event({"stage": "done", "fraction": 1.0, "message": "Audit finished"})
    return report


def _write_html(report: dict, out_dir: Path, on_event: Event | None) -> None:
    """The stakeholder HTML. A rendering bug must not throw away a finished audit: report.json
    is already written, so the failure goes to report_error.log and the run says so."""
    import traceback

    from core.results.report import write_html_report

    try:
        write_html_report(report, out_dir)
    except Exception:  # a bug in rendering, kept for the developers, reported to the user
        atomic_write(out_dir / "report_error.log", traceback.format_exc())
        if on_event is not None:
            on_event({"stage": "audit", "message": "The HTML report could not be written; "
                                                   "report.json is complete (see report_error.log)"})


def _stop_if_cancelled(cancelled: bool) -> None:
    if cancelled:
        from core.errors import Cancelled

        raise Cancelled()


# Below this many test rows a worker process's start-up (2-5 s: torch, scikit-learn, umap-learn)
# costs more than it saves; the automatic choice then stays in one process.
PARALLEL_MIN_TEST_ROWS = 2_000


def workers_for(config: AuditConfig, n_test: int) -> int:
    """Processes for the models' fine-tuning and audit: config.workers if set, else one per core
    (core.run.parallel.default_workers) from PARALLEL_MIN_TEST_ROWS test rows, else 1. The results
    do not depend on it."""
    from core.run.parallel import default_workers

    if config.workers:
        return int(config.workers)
    return default_workers() if n_test >= PARALLEL_MIN_TEST_ROWS else 1


def _submit_finetune(workers: Workers, config: AuditConfig, study: Study, strategy: str, encoder,
                     encoder_config) -> Any:
    """Start one fine-tuning (a strategy on `encoder`, or the supervised baseline of shape
    `encoder_config`) as a seeded task of `workers`."""
    from core.learning.finetune.config import FinetuneConfig

    split = study.split
    finetune_config = FinetuneConfig(strategy=strategy, epochs=config.finetune_epochs, patience=config.patience,
                                     batch_size=config.batch_size, seed=config.seed)
    return workers.submit(_finetune_one, finetune_config, encoder, encoder_config, study.X[split.labelled_train],
                          study.labels(split.labelled_train), study.X[split.validation],
                          study.labels(split.validation), config.method, config.threads)


def _gather_finetuned(workers: Workers, futures: list, config: AuditConfig, progress: _Progress,
                      should_stop: Callable[[], bool] | None) -> list:
    """The fine-tuned models in submission order. A model's loss curve is reported when it is
    done; cancel takes effect between models."""
    def on_done(index: int, finished: int, model) -> None:
        for record in model.history:
            if "epoch" in record:
                progress.stage("finetune", finished / len(futures), message=f"Fine-tuned {model.strategy}",
                               model=model.strategy, epoch=record["epoch"], epochs=config.finetune_epochs,
                               loss=record["train_loss"], val_loss=record["val_loss"])
        progress.stage("finetune", finished / len(futures), message=f"Fine-tuned {model.strategy}",
                       model=model.strategy)

    progress.stage("finetune", 0.0, message=f"Fine-tuning {len(futures)} models")
    return workers.gather(futures, should_stop=should_stop, on_done=on_done)


def _finetune_one(finetune_config, encoder, encoder_config, X_train: np.ndarray, y_train: np.ndarray,
                  X_val: np.ndarray, y_val: np.ndarray, method: str, threads: int):
    """One fine-tuning task (a worker process may run it): a strategy, or the supervised baseline."""
    import torch

    from core.learning.finetune.training import finetune, train_supervised

    torch.set_num_threads(threads)
    if finetune_config.strategy == SUPERVISED:
        return train_supervised(X_train, y_train, X_val, y_val, finetune_config, encoder_config)
    return finetune(encoder, X_train, y_train, X_val, y_val, finetune_config, pretraining=method)


def audit_models(config: AuditConfig, study: Study, models: list, pretrained, out_dir: Path,
                 progress: _Progress, should_stop: Callable[[], bool] | None, workers: Workers) -> dict:
    """Audit every model on the study's test rows; write predictions and embeddings; return the report."""
    from core.audit.per_model import ModelTask, audit_model
    from core.audit.representation import attribute_leakage
    from core.data import find_proxies

    X, split = study.X, study.split
    test, validation = split.test, split.validation
    y_test = study.labels(test)
    groups_test = study.groups(test)
    scores = {m.name: m.predict_proba(X[test]) for m in models}
    preds = {name: (score >= 0.5).astype(np.int64) for name, score in scores.items()}
    _write_predictions(out_dir / "predictions.parquet", study.row_ids(test), groups_test, y_test, scores, preds)
    _write_predictions(out_dir / "validation_predictions.parquet", study.row_ids(validation),
                       study.groups(validation), study.labels(validation),
                       {m.name: m.predict_proba(X[validation]) for m in models},
                       None)

    embeddings = {m.name: m.embed(X[test]) for m in models}
    strata = groups_test.astype(str).agg(" & ".join, axis=1).to_numpy()
    # The models' audits and the raw-feature leakage probes are independent tasks: run on every core.
    futures = [workers.submit(attribute_leakage, X[test], groups_test[attribute], random_state=config.seed)
               for attribute in groups_test.columns]
    futures += [workers.submit(audit_model, ModelTask(
        name=m.name, y_true=y_test, y_pred=preds[m.name], y_score=scores[m.name], groups=groups_test,
        embedding=embeddings[m.name], supervised_embedding=embeddings[SUPERVISED],
        supervised_pred=None if m.name == SUPERVISED else preds[SUPERVISED], strata=strata, n_boot=config.n_boot,
        confidence=config.confidence, min_group_size=config.min_group_size, umap=config.umap, seed=config.seed))
        for m in models]
    names = list(groups_test.columns) + [m.name for m in models]

    def on_done(index: int, finished: int, result: dict) -> None:
        progress.stage("audit", finished / len(futures), message=f"Audited {names[index]}")

    progress.stage("audit", 0.0, message=f"Auditing {len(models)} models")
    results = workers.gather(futures, should_stop=should_stop, on_done=on_done)
    raw_leakage = dict(zip(groups_test.columns, results[:len(groups_test.columns)]))
    audited = results[len(groups_test.columns):]

    entries, umap_frames = [], []
    row_ids = study.row_ids(test)
    for model, result in zip(models, audited):
        fairness = result["fairness"]
        representation = result["representation"]
        for attribute, probe in representation["leakage"].items():
            raw = raw_leakage[attribute]
            representation["leakage"][attribute] = {**probe, "raw_features_balanced_accuracy": raw["balanced_accuracy"],
                                                    "raw_features_std": raw["std"]}
        entry = {"name": model.name, "pretraining": model.pretraining, "strategy": model.strategy,
                 "n_trainable_params": model.n_trainable_params,
                 "overall": fairness["overall"], "groups": _in_natural_order(fairness["groups"], study.data.group_order),
                 "gaps": fairness["gaps"], "representation": representation, "calibration": model.calibration}
        if result["compared_with_supervised"] is not None:
            entry["compared_with_supervised"] = result["compared_with_supervised"]
        entries.append(entry)
        if result["umap"] is not None:
            coords, rows = result["umap"]
            umap_frames.append(pd.DataFrame({"row_id": row_ids[rows], "model": model.name,
                                             "umap_x": coords[:, 0].astype(np.float32),
                                             "umap_y": coords[:, 1].astype(np.float32)}))
    if umap_frames:
        atomic_write(out_dir / "embeddings.parquet", _parquet_bytes(pd.concat(umap_frames, ignore_index=True)))

    return {
        "equiscope_version": __version__,
        "study": _study_summary(study, config),
        "models": entries,
        "pretraining": _pretraining_summary(pretrained),
        "bootstrap": {"method": "percentile", "n_boot": config.n_boot, "confidence": config.confidence,
                      "resampling": "within groups"},
        "withheld_columns": study.data.withheld_columns,
        "proxies": [finding.to_dict() for finding in find_proxies(study.data.frame[study.data.features],
                                                                  study.data.groups)],
        "notes": study.source.notes + study.data.notes,
        "warnings": study.data.warnings,
        "config": config.to_dict(),
        "versions": _versions(),
    }


def _in_natural_order(groups: dict[str, list[dict]], order: dict[str, list[str]]) -> dict[str, list[dict]]:
    """Sort each partition's group rows by the attributes' natural orders (age bins by age),
    intersections by the tuple of their parts' ranks."""
    def rank(row: dict) -> tuple:
        return tuple(order[a].index(v) if v in order.get(a, []) else len(order.get(a, []))
                     for a, v in row["values"].items())

    return {key: sorted(rows, key=rank) for key, rows in groups.items()}


def _write_predictions(path: Path, row_ids: np.ndarray, groups: pd.DataFrame, y: np.ndarray,
                       scores: dict[str, np.ndarray], preds: dict[str, np.ndarray] | None) -> None:
    """The predictions.parquet contract: row_id, each sensitive column, y_true, score__NAME, pred__NAME."""
    columns: dict[str, Any] = {"row_id": row_ids.astype(np.int64)}
    columns.update({attribute: groups[attribute].astype(str).to_numpy() for attribute in groups.columns})
    columns["y_true"] = y.astype(np.int64)
    for name, score in scores.items():
        columns[f"score__{name}"] = score.astype(np.float64)
        columns[f"pred__{name}"] = (preds[name] if preds is not None else (score >= 0.5)).astype(np.int64)
    atomic_write(path, _parquet_bytes(pd.DataFrame(columns)))


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _study_summary(study: Study, config: AuditConfig) -> dict:
    split = study.split
    return {"dataset": study.source.name, "dataset_sha256": study.source.sha256, "target": study.spec.target,
            "positive_label": study.spec.positive_label, "sensitive": list(study.spec.sensitive),
            "n_train": int(len(split.labelled_train)), "n_test": int(len(split.test)),
            "n_validation": int(len(split.validation)), "n_pretrain": int(len(split.pretrain)),
            "label_fraction": float(config.label_fraction), "seed": int(config.seed),
            "features": list(study.data.features), "n_encoded_features": int(study.encoder.n_features_out_)}


def _pretraining_summary(pretrained) -> dict:
    return {"method": pretrained.config.method, "epochs_completed": pretrained.epochs_completed,
            "best_epoch": pretrained.best_epoch, "best_val_loss": pretrained.best_val_loss,
            "initial_val_loss": pretrained.initial_val_loss, "stopped_early": pretrained.stopped_early,
            "collapse": pretrained.collapse,
            "history": [{k: v for k, v in epoch.items() if k in ("epoch", "loss", "val_loss")}
                        for epoch in pretrained.history]}


def _versions() -> dict[str, str]:
    import sklearn
    import torch

    import fairlearn

    return {"equiscope": __version__, "torch": torch.__version__.split("+")[0], "numpy": np.__version__,
            "pandas": pd.__version__, "scikit-learn": sklearn.__version__, "fairlearn": fairlearn.__version__}


def audit_job(context) -> dict:
    """Job entry point (core.workspace.jobs): run the audit into the run's folder, return headline metrics."""
    config = AuditConfig.from_dict(context.config)
    report = run_audit(config, context.run_dir, on_event=context.report, should_stop=context.should_stop)
    return headline(report)


def headline(report: dict) -> dict:
    """Per model: accuracy, worst-group accuracy and equalized-odds gap of the first attribute."""
    first = report["study"]["sensitive"][0]
    return {m["name"]: {"accuracy": m["overall"]["accuracy"],
                        "worst_group_accuracy": m["gaps"][first]["worst_group_accuracy"],
                        "equalized_odds_difference": m["gaps"][first]["equalized_odds_difference"]}
            for m in report["models"]}
