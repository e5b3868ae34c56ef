"""The end-to-end audit, shared by `equiscope audit` and the dashboard's jobs.

    study (fixed split)  ->  SSL pretraining on unlabelled rows  ->  every fine-tuning
    strategy on the pretrained encoder + a supervised baseline of the same shape  ->
    on the same test rows: fairness (per group, intersections, bootstrap CIs, gaps),
    representation (leakage, UMAP, per-group CKA and kNN), paired gap comparisons
    against the supervised baseline  ->  report.json, predictions.parquet, report.html.

Every recipe (pretraining + each strategy, and the baseline) is trained `config.replicates`
times with the seeds of core.run.config.replicate_seeds, on the same split and test rows;
each replicate draws its own labelled subsample. Replicate 0, seeded with the study seed, is
the model shown (saved, fully audited); the others add their test-row predictions and the
spread over replicates (core.run.replicates). Pretraining runs in this process, replicate
after replicate, while the worker pool fine-tunes those already pretrained.

The knobs are core.run.config.AuditConfig, the report dict is put together in core.run.assemble,
and every file of the run folder is named and written by core.results.folder.

Everything is seeded: the same inputs and seed give an identical report.json on CPU
(timings go to timings.json, never into report.json). Files are written atomically;
`run_audit` writes into `out_dir` as it goes, so a caller that needs all-or-nothing output
(the CLI) gives it a temporary folder and renames it when the audit succeeds.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.audit.per_model import ModelTask, audit_model
from core.audit.representation import raw_feature_leakage, warm_up_umap
from core.data.split import redraw_labelled_train
from core.data.source import DataSource, open_source
from core.data.study import Study
from core.errors import Cancelled
from core.files import atomic_write
from core.learning.checkpoint import save_encoder
from core.learning.finetune.config import FinetuneConfig
from core.learning.finetune.training import finetune, train_supervised
from core.learning.pretrain import PretrainConfig, PretrainResult, pretrain
from core.learning.ssl.views import FeatureLayout
from core.results.report import write_html_report
from core.results import folder
from core.run.assemble import assemble_report, model_entry
from core.run.config import AuditConfig
from core.run.parallel import Workers, default_workers
from core.run.replicates import ReplicateTask, audit_replicates
from core.vocabulary import INTERSECTION, SUPERVISED

Event = Callable[[dict], None]

# Share of the progress bar each stage fills.
_STAGE_WEIGHTS = {"study": 0.02, "pretrain": 0.43, "finetune": 0.35, "audit": 0.20}


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
    seeds = config.replicate_seeds
    pretrain_config = PretrainConfig(method=config.method, method_params=dict(config.method_params),
                                     encoder=dict(config.encoder), epochs=config.epochs,
                                     batch_size=config.batch_size, patience=config.pretrain_patience,
                                     seed=config.seed, device="cpu")
    labelled = [_labelled_rows(study, replicate, seed) for replicate, seed in enumerate(seeds)]
    warm_up = partial(warm_up_umap, len(split.test)) if config.umap else None
    with Workers(workers_for(config, len(split.test)), warm_up=warm_up) as workers:
        # The supervised baselines need no encoder: in worker processes they train during pretraining.
        supervised = [_submit_finetune(workers, config, study, X, SUPERVISED, None,
                                       pretrain_config.encoder_config(X.shape[1]), seed, rows)
                      for seed, rows in zip(seeds, labelled)]
        t0 = time.perf_counter()
        pretrained, strategies = [], []
        for replicate, seed in enumerate(seeds):
            # Pretraining runs here, one replicate after another, while the workers fine-tune
            # the replicates already pretrained (each strategy is one task).
            result = _pretrain(config, study, X, replace(pretrain_config, seed=seed), replicate, out_dir,
                               progress, should_stop)
            if replicate == 0:
                save_encoder(out_dir / folder.ENCODER, result.encoder, pretrain_config.to_dict())
            pretrained.append(result)
            strategies.append([_submit_finetune(workers, config, study, X, strategy, result.encoder, None, seed,
                                                labelled[replicate]) for strategy in config.strategies])
        timings["pretrain_s"] = time.perf_counter() - t0
        progress.finish("pretrain")

        t0 = time.perf_counter()
        futures = [future for replicate in range(len(seeds)) for future in strategies[replicate] + [supervised[replicate]]]
        finished = _gather_finetuned(workers, futures, config, progress, should_stop)
        per_replicate = len(config.strategies) + 1
        models = [finished[r * per_replicate:(r + 1) * per_replicate] for r in range(len(seeds))]
        for model in models[0]:  # the model shown; later replicates live on in their predictions
            model.save(folder.model_dir(out_dir, model.name))
        timings["finetune_s"] = time.perf_counter() - t0
        progress.finish("finetune")

        t0 = time.perf_counter()
        report = audit_models(config, study, models, pretrained[0], out_dir, progress, should_stop, workers)
    timings["audit_s"] = time.perf_counter() - t0
    folder.write_report(out_dir, report)
    _write_html(report, out_dir, on_event)
    timings["total_s"] = time.perf_counter() - started
    folder.write_timings(out_dir, timings)
    progress.finish("audit")
    if on_event is not None:
        on_event({"stage": "done", "fraction": 1.0, "message": "Audit finished"})
    return report


def _write_html(report: dict, out_dir: Path, on_event: Event | None) -> None:
    """The stakeholder HTML. A rendering bug must not throw away a finished audit: report.json
    is already written, so the failure goes to report_error.log and the run says so."""
    try:
        write_html_report(report, out_dir)
    except Exception:  # a bug in rendering, kept for the developers, reported to the user
        atomic_write(out_dir / folder.REPORT_ERROR_LOG, traceback.format_exc())
        if on_event is not None:
            on_event({"stage": "audit", "message": "The HTML report could not be written; "
                                                   "report.json is complete (see report_error.log)"})


def _stop_if_cancelled(cancelled: bool) -> None:
    if cancelled:
        raise Cancelled()


def _labelled_rows(study: Study, replicate: int, seed: int) -> np.ndarray:
    """The labelled training rows of a replicate: the study's own for replicate 0 (today's
    models), a fresh stratified draw of the same fraction for the others."""
    if replicate == 0:
        return study.split.labelled_train
    return redraw_labelled_train(study.split, study.data.y, study.data.groups, seed=seed).labelled_train


def _pretrain(config: AuditConfig, study: Study, X: np.ndarray, pretrain_config: PretrainConfig, replicate: int,
              out_dir: Path, progress: _Progress, should_stop: Callable[[], bool] | None) -> PretrainResult:
    """Pretrain replicate `replicate`'s encoder (its seed in `pretrain_config`); cancel stops it
    at its next step. The progress bar's pretraining share is split evenly over the replicates."""
    split, replicates = study.split, int(config.replicates)
    message = f"Pretraining {config.method}" + (f" (replicate {replicate + 1} of {replicates})"
                                               if replicates > 1 else "")

    def pretrain_event(event: dict) -> None:
        fraction = event.get("step", 0) / max(event.get("total_steps", 1), 1)
        progress.stage("pretrain", (replicate + fraction) / replicates, message=message,
                       **{k: event[k] for k in ("epoch", "epochs", "step", "total_steps", "loss", "val_loss",
                                                 "rows_per_second") if k in event})

    checkpoints = out_dir / folder.CHECKPOINTS
    result = pretrain(X[split.pretrain], X[split.validation], FeatureLayout.from_encoder(study.encoder),
                      pretrain_config, on_event=pretrain_event, should_stop=should_stop,
                      checkpoint_dir=checkpoints if replicate == 0 else checkpoints / f"r{replicate}")
    _stop_if_cancelled(result.cancelled)
    return result


# Below this many test rows a worker process's start-up (2-5 s: torch, scikit-learn, umap-learn)
# costs more than it saves; the automatic choice then stays in one process.
PARALLEL_MIN_TEST_ROWS = 2_000


def workers_for(config: AuditConfig, n_test: int) -> int:
    """Processes for the models' fine-tuning and audit: config.workers if set, else one per core
    (core.run.parallel.default_workers) from PARALLEL_MIN_TEST_ROWS test rows, else 1. The results
    do not depend on it."""
    if config.workers:
        return int(config.workers)
    return default_workers() if n_test >= PARALLEL_MIN_TEST_ROWS else 1


def _submit_finetune(workers: Workers, config: AuditConfig, study: Study, X: np.ndarray, strategy: str, encoder,
                     encoder_config, seed: int, labelled: np.ndarray) -> Any:
    """Start one fine-tuning (a strategy on `encoder`, or the supervised baseline of shape
    `encoder_config`) on the `labelled` training rows as a task of `workers` seeded with `seed`."""
    validation = study.split.validation
    finetune_config = FinetuneConfig(strategy=strategy, epochs=config.finetune_epochs, patience=config.finetune_patience,
                                     batch_size=config.batch_size, seed=seed)
    return workers.submit(_finetune_one, finetune_config, encoder, encoder_config, X[labelled], study.labels(labelled),
                          X[validation], study.labels(validation), config.method, config.threads)


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
    torch.set_num_threads(threads)
    if finetune_config.strategy == SUPERVISED:
        return train_supervised(X_train, y_train, X_val, y_val, finetune_config, encoder_config)
    return finetune(encoder, X_train, y_train, X_val, y_val, finetune_config, pretraining=method)


def audit_models(config: AuditConfig, study: Study, replicates: list[list], pretrained: PretrainResult,
                 out_dir: Path, progress: _Progress, should_stop: Callable[[], bool] | None,
                 workers: Workers) -> dict:
    """Audit every model on the study's test rows; write predictions and embeddings; return the report.

    `replicates[r]` holds replicate r's models, in the same order for every r. Replicate 0's
    models are the models shown: the full audit (intervals, representation, UMAP). Every
    replicate's test-row decisions make each model's replicates, aggregate and comparison
    with the supervised baseline (core.run.replicates)."""
    X, split = study.X, study.split
    test, validation = split.test, split.validation
    models = replicates[0]
    y_test = study.labels(test)
    groups_test = study.groups(test)
    scores = {m.name: [replicate[i].predict_proba(X[test]) for replicate in replicates] for i, m in enumerate(models)}
    preds = {name: [folder.decisions(score) for score in runs] for name, runs in scores.items()}
    folder.write_predictions(out_dir / folder.PREDICTIONS, study.row_ids(test), groups_test, y_test,
                             {name: runs[0] for name, runs in scores.items()},
                             {name: runs[0] for name, runs in preds.items()},
                             replicates={name: runs[1:] for name, runs in scores.items() if len(runs) > 1})
    folder.write_predictions(out_dir / folder.VALIDATION_PREDICTIONS, study.row_ids(validation),
                             study.groups(validation), study.labels(validation),
                             {m.name: m.predict_proba(X[validation]) for m in models})

    embeddings = {m.name: m.embed(X[test]) for m in models}
    strata = groups_test.astype(str).agg(INTERSECTION.join, axis=1).to_numpy()
    # The models' audits and the raw-feature leakage probes are independent tasks: run on every core.
    # The raw features are probed with and without the attribute's own encoded columns.
    futures = [workers.submit(raw_feature_leakage, X[test], groups_test[attribute],
                              study.encoder.column_slices_.get(attribute), random_state=config.seed)
               for attribute in groups_test.columns]
    futures += [workers.submit(audit_model, ModelTask(
        name=m.name, y_true=y_test, y_pred=preds[m.name][0], y_score=scores[m.name][0], groups=groups_test,
        embedding=embeddings[m.name], supervised_embedding=embeddings[SUPERVISED],
        is_baseline=m.name == SUPERVISED, strata=strata, n_boot=config.n_boot,
        confidence=config.confidence, min_group_size=config.min_group_size, umap=config.umap, seed=config.seed,
        min_class_rows=config.min_class_rows))
        for m in models]
    futures += [workers.submit(audit_replicates, ReplicateTask(
        name=m.name, seeds=config.replicate_seeds, y_true=y_test, preds=preds[m.name], scores=scores[m.name],
        groups=groups_test, supervised_preds=None if m.name == SUPERVISED else preds[SUPERVISED],
        n_boot=config.n_boot, confidence=config.confidence, min_group_size=config.min_group_size, seed=config.seed))
        for m in models]
    names = list(groups_test.columns) + [m.name for m in models] + [f"{m.name}'s replicates" for m in models]

    def on_done(index: int, finished: int, result: dict) -> None:
        progress.stage("audit", finished / len(futures), message=f"Audited {names[index]}")

    progress.stage("audit", 0.0, message=f"Auditing {len(models)} models")
    results = workers.gather(futures, should_stop=should_stop, on_done=on_done)
    n_attributes = len(groups_test.columns)
    raw_leakage = dict(zip(groups_test.columns, results[:n_attributes]))
    audited = results[n_attributes:n_attributes + len(models)]
    replicated = results[n_attributes + len(models):]

    row_ids = study.row_ids(test)
    entries = [model_entry(model, result, raw_leakage, study.data.group_order, over_replicates)
               for model, result, over_replicates in zip(models, audited, replicated)]
    folder.write_embeddings(out_dir, [folder.embedding_frame(row_ids[result["umap"][1]], model.name, result["umap"][0])
                                      for model, result in zip(models, audited) if result["umap"] is not None])
    return assemble_report(config, study, entries, pretrained)


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
