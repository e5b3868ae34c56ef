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
spread over replicates (core.run.replicates). The replicates' pretrainings and fine-tunings
are tasks on the worker pool, so every core trains (core.run.training).

The knobs are core.run.config.AuditConfig, the report dict is put together in core.run.assemble,
and every file of the run folder is named and written by core.results.folder.

Everything is seeded: the same inputs and seed give an identical report.json on CPU
(timings go to timings.json, never into report.json). Files are written atomically;
`run_audit` writes into `out_dir` as it goes, so a caller that needs all-or-nothing output
(the CLI) gives it a temporary folder and renames it when the audit succeeds.
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.audit.per_model import ModelTask, audit_model
from core.audit.representation import raw_feature_leakage, warm_up_umap
from core.data.columns import open_columns
from core.data.mapped import resolve, write_array
from core.data.source import DataSource, open_source
from core.data.study import Study
from core.files import atomic_write
from core.learning.outside import OnStudy, load_outside_model
from core.learning.precision import resolve_precision
from core.learning.pretrain import PretrainResult, resolve_device
from core.results.report import write_html_report
from core.results import folder
from core.run.assemble import assemble_report, model_entry
from core.run.config import AuditConfig
from core.run.federated_models import check_federated
from core.run.parallel import Workers, default_workers
from core.run.replicates import ReplicateTask, audit_replicates
from core.run.training import train_replicates
from core.run.variants import VariantContext, train_variants, variant_tasks
from core.vocabulary import INTERSECTION, SUPERVISED

Event = Callable[[dict], None]

# Share of the progress bar each stage fills.
_STAGE_WEIGHTS = {"study": 0.02, "pretrain": 0.43, "finetune": 0.35, "audit": 0.20}


class _Progress:
    """Turns stage-local progress into one overall fraction and forwards events. Pretraining
    and fine-tuning overlap (core.run.training), so each stage keeps its own fraction and the
    overall one is their weighted sum."""

    def __init__(self, on_event: Event | None) -> None:
        self.on_event = on_event
        self.fractions = dict.fromkeys(_STAGE_WEIGHTS, 0.0)

    def stage(self, name: str, fraction: float, **event: Any) -> None:
        self.fractions[name] = max(self.fractions[name], min(max(fraction, 0.0), 1.0))
        if self.on_event is not None:
            overall = sum(_STAGE_WEIGHTS[stage] * done for stage, done in self.fractions.items())
            self.on_event({**event, "stage": name, "fraction": round(overall, 4)})

    def finish(self, name: str) -> None:
        self.fractions[name] = 1.0


#: The keys of a training task's event that the run's progress keeps.
_EVENT_KEYS = ("message", "replicate", "model", "epoch", "epochs", "step", "total_steps", "loss", "val_loss",
               "rows_per_second")


class _TrainingProgress:
    """The training stage's events and finished tasks as progress: pretraining's share is the
    mean of the replicates' step fractions, fine-tuning's the share of models finished."""

    def __init__(self, progress: _Progress, config: AuditConfig) -> None:
        self.progress, self.replicates = progress, int(config.replicates)
        self.pretrain_fraction = [0.0] * self.replicates
        self.models_total = self.replicates * (len(config.strategies) + 1 + len(config.baselines))
        self.models_done = 0
        self.pretrained_at = time.perf_counter()
        self.method = config.method

    def on_event(self, event: dict) -> None:
        kept = {k: event[k] for k in _EVENT_KEYS if k in event}
        if event.get("stage") == "pretrain":
            replicate = int(event.get("replicate", 0))
            self.pretrain_fraction[replicate] = event.get("step", 0) / max(event.get("total_steps", 1), 1)
            if self.replicates > 1:
                kept["message"] = f"Pretraining {self.method} (replicate {replicate + 1} of {self.replicates})"
            self.progress.stage("pretrain", sum(self.pretrain_fraction) / self.replicates, **kept)
        elif event.get("stage") == "finetune":
            self.progress.stage("finetune", self.models_done / self.models_total, **kept)
        elif self.progress.on_event is not None:  # warnings (a collapsed encoder) go through as they are
            self.progress.on_event(event)

    def on_finished(self, kind: str, replicate: int, result: Any) -> None:
        if kind == "pretrain":
            self.pretrain_fraction[replicate] = 1.0
            self.pretrained_at = time.perf_counter()
            self.progress.stage("pretrain", sum(self.pretrain_fraction) / self.replicates,
                                message=f"Pretrained replicate {replicate + 1} of {self.replicates}",
                                replicate=replicate)
        else:
            self.models_done += 1
            self.progress.stage("finetune", self.models_done / self.models_total, message=f"Fine-tuned {result.name}",
                                model=result.name, replicate=replicate)


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
    scratch = out_dir / SCRATCH  # worker tasks read the rows from here (core.data.mapped)
    try:
        scratch.mkdir(exist_ok=True)
        study = _mapped_study(config, source, scratch)
        del source  # once the study is mapped to disk, its feature columns can be freed
        check_federated(config, study)  # a bad --federated-by column stops before any training
        study.save(out_dir)
        return _train_and_audit(config, study, out_dir, scratch, progress, timings, started, on_event,
                                should_stop)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _mapped_study(config: AuditConfig, source: DataSource | None, scratch: Path) -> Study:
    """The audit's study, its encoded rows in `scratch`. A Parquet file named by the config is read
    one column at a time (core.data.columns: a table larger than memory); any other table whole.
    What still reads raw columns afterwards: an outside model (every feature, so the whole table is
    read and kept) and federation (its site column)."""
    keep = [c for c in [config.federated_by] if c]
    split = {"label_fraction": config.label_fraction, "seed": config.seed}
    table = open_columns(config.data) if source is None and not config.model else None
    if table is not None:
        return Study.create_mapped(table, config.spec(), scratch, keep_columns=keep, **split)
    study = Study.create(source or open_source(config.data), config.spec(), **split)
    study.map_to_disk(scratch, keep_columns=None if config.model else keep)
    return study


#: The run folder's scratch space: the encoded matrix and the models' test-row embeddings, which
#: worker tasks read from disk (core.data.mapped); removed when the audit ends, however it ends.
SCRATCH = ".scratch"


def _train_and_audit(config: AuditConfig, study: Study, out_dir: Path, scratch: Path, progress: _Progress,
                     timings: dict[str, float], started: float, on_event: Event | None,
                     should_stop: Callable[[], bool] | None) -> dict:
    """run_audit once its study is made and mapped: training, variants, the audit stage, the files."""
    # An outside model joins the trained ones on the same rows; loaded first: a refused file stops before training.
    outside = (OnStudy(load_outside_model(config.model, config.trust_types), study, config.model)
               if config.model else None)
    timings["study_s"] = time.perf_counter() - started
    progress.finish("study")

    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    split = study.split
    warm_up = partial(warm_up_umap, len(split.test)) if config.umap else None
    tracker = _TrainingProgress(progress, config)
    with Workers(workers_for(config, len(split.test)), warm_up=warm_up, on_event=tracker.on_event,
                 should_stop=should_stop) as workers:
        t0 = time.perf_counter()
        trained = train_replicates(workers, config, study, out_dir, device=str(device), precision=precision,
                                   on_finished=tracker.on_finished)
        timings["training_s"] = time.perf_counter() - t0
        timings["pretrain_s"] = tracker.pretrained_at - t0
        timings["finetune_s"] = timings["training_s"] - timings["pretrain_s"]
        # Variants (mitigations, private models) change a trained model: they start once every model exists.
        t0 = time.perf_counter()
        context = VariantContext(config, study, trained.pretrained, trained.models, trained.labelled,
                                 device=str(device), precision=precision)
        tasks = variant_tasks(context)
        tracker.models_total += len(tasks)
        for replicate, variants in enumerate(train_variants(workers, context, tasks, tracker.on_finished)):
            trained.models[replicate].extend(variants)
        timings["variants_s"] = time.perf_counter() - t0
        progress.finish("pretrain")
        progress.finish("finetune")
        for models in trained.models if outside is not None else []:
            models.append(outside)  # fixed: the same model beside every replicate
        for model in trained.models[0]:  # the model shown; later replicates live on in their predictions
            model.save(folder.model_dir(out_dir, model.name))

        t0 = time.perf_counter()
        report = audit_models(config, study, trained.models, trained.pretrained[0], out_dir, progress, should_stop,
                              workers, scratch)
    timings["audit_s"] = time.perf_counter() - t0
    report["training"] = {"device": str(device), "precision": precision}
    report["warnings"] = list(report["warnings"]) + context.notes  # variants skipped or failed
    timings["work"] = trained.work
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


def audit_models(config: AuditConfig, study: Study, replicates: list[list], pretrained: PretrainResult,
                 out_dir: Path, progress: _Progress, should_stop: Callable[[], bool] | None,
                 workers: Workers, scratch: Path) -> dict:
    """Audit every model on the study's test rows; write predictions and embeddings; return the report.

    `replicates[r]` holds replicate r's models, in the same order for every r. Replicate 0's
    models are the models shown: the full audit (intervals, representation, UMAP). Every
    replicate's test-row decisions make each model's replicates, aggregate and comparison
    with the supervised baseline (core.run.replicates). The test-row embeddings go to `scratch`
    as they are made, and the workers' tasks read them from there (core.data.mapped)."""
    split = study.split
    test, validation = split.test, split.validation
    models = replicates[0]
    y_test = study.labels(test)
    groups_test = study.groups(test)
    X_test = resolve(study.rows(test))  # mapped: read from disk in inference batches, never copied whole
    scores = {m.name: [replicate[i].predict_proba(X_test) for replicate in replicates] for i, m in enumerate(models)}
    # A randomized classifier (fairlearn's reductions and threshold rules) decides by a seeded draw.
    randomized = {m.name for m in models if getattr(m, "randomized", False)}
    preds = {name: [folder.drawn_decisions(score, config.seed, r, name) if name in randomized
                    else folder.decisions(score) for r, score in enumerate(runs)] for name, runs in scores.items()}
    folder.write_predictions(out_dir / folder.PREDICTIONS, study.row_ids(test), groups_test, y_test,
                             {name: runs[0] for name, runs in scores.items()},
                             {name: runs[0] for name, runs in preds.items()},
                             replicates={name: runs[1:] for name, runs in scores.items() if len(runs) > 1})
    X_validation = resolve(study.rows(validation))
    folder.write_predictions(out_dir / folder.VALIDATION_PREDICTIONS, study.row_ids(validation),
                             study.groups(validation), study.labels(validation),
                             {m.name: m.predict_proba(X_validation) for m in models})

    embeddings = {m.name: _embedding_on_disk(m.embed(X_test), scratch / f"embedding-{i}.npy")
                  for i, m in enumerate(models)}
    del X_test, X_validation
    strata = groups_test.astype(str).agg(INTERSECTION.join, axis=1).to_numpy()
    # The models' audits and the raw-feature leakage probes are independent tasks: run on every core.
    # The raw features are probed with and without the attribute's own encoded columns.
    futures = [workers.submit(raw_feature_leakage, study.rows(test), groups_test[attribute],
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
        groups=groups_test, base_preds=preds[m.base] if getattr(m, "base", None) else None,
        # A variant answers "what did the change do": compared with its base only, so adding
        # mitigations never enlarges (and weakens) the SSL-vs-supervised family.
        supervised_preds=None if m.name == SUPERVISED or getattr(m, "base", None) else preds[SUPERVISED],
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


def _embedding_on_disk(embedding: np.ndarray | None, path: Path):
    """A model's test-row embedding written to `path`, as the handle its audit tasks read; None stays None."""
    return None if embedding is None else write_array(path, embedding)


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
