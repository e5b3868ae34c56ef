"""The audit's training stage: every replicate's pretraining and fine-tunings as tasks on the workers.

    trained = train_replicates(workers, config, study, out_dir, on_pretrain_done=...)
    trained.pretrained[r]          replicate r's PretrainResult
    trained.models[r]              replicate r's models: config.strategies in order, then the baseline,
                                   then config.baselines (core.learning.classical)
    trained.work                   what each task computed (steps, rows), for the benchmark's floor
    trained.labelled[r]            replicate r's labelled training rows

Replicates are independent, so no core waits for another: each pretraining is a task, and a
replicate's fine-tunings become tasks the moment its encoder is pretrained, while the other
replicates still pretrain (core.run.parallel.Workers.run keeps one task per worker in flight).
Priorities: pretraining first (every fine-tuning of its replicate waits for it), and the classical
baselines right after it (gradient boosting is the longest single task: started early, it overlaps
the fine-tunings), then the strategies, then the supervised baselines, which need no encoder and
fill the cores at the end.
On one worker the same tasks run in this process in that order.

Each replicate is seeded as before (core.run.config.replicate_seeds), so the models, and
report.json, do not depend on the number of workers or on the order tasks finish in.

Batched (`batched_training`: on CUDA by default, config.batch_replicates): the R replicates of
a recipe are one task that trains them as one batched model (core.learning.batched: the same
models as one after another, to rounding), because on a GPU these small models are bound by
kernel launches; on a CPU batching gains nothing (docs/performance.md), so there each
replicate stays its own task. Batched pretraining writes no epoch checkpoints.
Progress: the tasks' events (core.run.parallel.send_event) carry "replicate" (and "model"),
so the live view can draw each replicate's loss curve; cancel reaches every task at its next
step (core.run.parallel.stop_requested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data.split import redraw_labelled_train
from core.data.study import Study
from core.errors import Cancelled
from core.learning.batched import finetune_replicates, pretrain_replicates, train_supervised_replicates
from core.learning.checkpoint import save_encoder
from core.learning.classical import fit_classical
from core.learning.finetune.config import FinetuneConfig, table_size_defaults
from core.learning.finetune.training import finetune, train_supervised
from core.learning.pretrain import PretrainConfig, PretrainResult, pretrain
from core.learning.ssl.views import FeatureLayout
from core.results import folder
from core.run.config import AuditConfig
from core.run.parallel import Task, Workers, send_event, stop_requested
from core.vocabulary import CLASSICAL, SUPERVISED

# Task priorities (lower runs first).
PRETRAIN, STRATEGY, BASELINE = 0, 1, 2
# The classical fits rank with the pretrainings (after them, being added later): gradient boosting is the
# longest single task (about 30 s of one core on Adult). Ranked last, as the other baselines are, it ran
# alone at the end of a 5-replicate audit while the other core sat idle for 30 s (docs/performance.md).
CLASSICAL_PRIORITY = PRETRAIN


@dataclass
class Trained:
    """What the training stage returns (see the module docstring)."""

    pretrained: list[PretrainResult]
    models: list[list[Any]]
    work: list[dict] = field(default_factory=list)
    labelled: list[np.ndarray] = field(default_factory=list)  # replicate r's labelled training rows


def train_replicates(workers: Workers, config: AuditConfig, study: Study, out_dir: Path, *,
                     device: str = "cpu", precision: str = "fp32",
                     on_finished: Callable[[str, int, Any], None] | None = None) -> Trained:
    """Pretrain and fine-tune every replicate (module docstring); replicate 0's encoder is saved
    into out_dir as soon as it exists. `on_finished(kind, replicate, result)` is called as each
    task ends (kind "pretrain", or the strategy's name). Raises core.errors.Cancelled when the
    workers' should_stop turns True."""
    X, split, seeds = study.X, study.split, config.replicate_seeds
    pretrain_config = PretrainConfig(method=config.method, method_params=dict(config.method_params),
                                     encoder=dict(config.encoder), epochs=config.epochs,
                                     batch_size=config.batch_size, patience=config.pretrain_patience,
                                     seed=config.seed, device=device, precision=precision)
    encoder_config = pretrain_config.encoder_config(X.shape[1])
    labelled = [labelled_rows(study, replicate, seed) for replicate, seed in enumerate(seeds)]
    layout = FeatureLayout.from_encoder(study.encoder)
    checkpoints = out_dir / folder.CHECKPOINTS

    def finetune_config_of(strategy: str, seed: int) -> FinetuneConfig:
        return finetune_config_for(config, len(split.labelled_train), strategy, seed)

    def finetune_task(strategy: str, replicate: int, encoder) -> Task:
        finetune_config = finetune_config_of(strategy, seeds[replicate])
        rows = labelled[replicate]
        return Task(BASELINE if strategy == SUPERVISED else STRATEGY, (strategy, replicate), finetune_one,
                    (finetune_config, encoder, encoder_config, study.rows(rows), study.labels(rows), study.rows(split.validation),
                     study.labels(split.validation), config.method, config.threads, replicate, device, precision))

    def batched_finetune_task(strategy: str, encoders) -> Task:
        configs = [finetune_config_of(strategy, seed) for seed in seeds]
        return Task(BASELINE if strategy == SUPERVISED else STRATEGY, (strategy, ALL), finetune_batched,
                    (configs, encoders, encoder_config, [X[rows] for rows in labelled],
                     [study.labels(rows) for rows in labelled], study.rows(split.validation), study.labels(split.validation),
                     config.method, config.threads, device, precision))

    batched = batched_training(config, device)
    if batched:
        tasks = [Task(PRETRAIN, ("pretrain", ALL), pretrain_batched,
                      (study.rows(split.pretrain), study.rows(split.validation), layout,
                       [replace(pretrain_config, seed=seed) for seed in seeds], config.threads)),
                 batched_finetune_task(SUPERVISED, None)]
    else:
        tasks = [Task(PRETRAIN, ("pretrain", replicate), pretrain_one,
                      (study.rows(split.pretrain), study.rows(split.validation), layout, replace(pretrain_config, seed=seed), replicate,
                       checkpoints if replicate == 0 else checkpoints / f"r{replicate}", config.threads))
                 for replicate, seed in enumerate(seeds)]
        tasks += [finetune_task(SUPERVISED, replicate, None) for replicate in range(len(seeds))]
    # The classical baselines need no encoder either: on the same labelled rows. They start right after the
    # pretrainings (CLASSICAL_PRIORITY), so that the longest single task overlaps the fine-tunings.
    fitted_with = [shared_fit(labelled, replicate) for replicate in range(len(seeds))]
    tasks += [Task(CLASSICAL_PRIORITY, (kind, replicate), fit_classical,
                   (kind, study.rows(labelled[replicate]), study.labels(labelled[replicate]), study.rows(split.validation),
                    study.labels(split.validation), seeds[replicate], config.threads))
              for replicate in sorted(set(fitted_with)) for kind in config.baselines]

    def on_done(task: Task, result: Any) -> list[Task]:
        kind, replicate = task.key
        each = list(enumerate(result)) if replicate == ALL else [(replicate, result)]
        if kind == "pretrain" and any(one.cancelled for _, one in each):
            raise Cancelled()
        if kind in config.baselines:  # a shared fit finishes every replicate that uses it
            each = [(r, result) for r in range(len(seeds)) if fitted_with[r] == replicate]
        for r, one in each:
            if on_finished is not None:
                on_finished(kind, r, one)
        if kind != "pretrain":
            return []
        if each[0][0] == 0:
            save_encoder(out_dir / folder.ENCODER, each[0][1].encoder, pretrain_config.to_dict())
        if replicate == ALL:
            return [batched_finetune_task(strategy, [one.encoder for one in result]) for strategy in config.strategies]
        return [finetune_task(strategy, replicate, result.encoder) for strategy in config.strategies]

    results = workers.run(tasks, on_done=on_done)
    for (kind, replicate), result in list(results.items()):  # a batched task's list: one result per replicate
        if replicate == ALL:
            results |= {(kind, r): one for r, one in enumerate(result)}
    names = [*config.strategies, SUPERVISED, *config.baselines]
    pretrained = [results["pretrain", r] for r in range(len(seeds))]
    models = [[results[name, fitted_with[r] if name in config.baselines else r] for name in names]
              for r in range(len(seeds))]
    work = [pretrain_work(result, r, len(split.validation)) for r, result in enumerate(pretrained)]
    work += [finetune_work(model, r) for r, replicate in enumerate(models) for model in replicate
             if model.strategy != CLASSICAL]  # the floor counts the torch work only
    return Trained(pretrained=pretrained, models=models, work=work, labelled=labelled)


#: The replicate key of a task that trains every replicate at once (batched).
ALL = "all"


def finetune_config_for(config: AuditConfig, n_labelled: int, strategy: str, seed: int) -> FinetuneConfig:
    """The FinetuneConfig of one strategy in one replicate (`seed`); the variants' fine-tunings use it too."""
    sized = table_size_defaults(n_labelled)  # gentler fine-tuning on small tables (docs/finetuning.md)
    return FinetuneConfig(**{**sized, "strategy": strategy, "epochs": config.finetune_epochs,
                             "patience": config.finetune_patience, "seed": seed,
                             "batch_size": min(config.batch_size, sized.get("batch_size", config.batch_size))})


def batched_training(config: AuditConfig, device: str) -> bool:
    """Whether the replicates of each recipe train as one batched model: config.batch_replicates
    "on" or "off", or "auto": on CUDA with more than one replicate (module docstring)."""
    if int(config.replicates) < 2 or config.batch_replicates == "off":
        return False
    return config.batch_replicates == "on" or str(device).startswith("cuda")


def pretrain_batched(X_train: np.ndarray, X_val: np.ndarray, layout: FeatureLayout, configs: list[PretrainConfig],
                     threads: int) -> list[PretrainResult]:
    """Every replicate's pretraining as one batched model (core.learning.batched)."""
    torch.set_num_threads(threads)
    return pretrain_replicates(X_train, X_val, layout, configs, on_event=send_event, should_stop=stop_requested)


def finetune_batched(configs: list[FinetuneConfig], encoders, encoder_config, X_train: list[np.ndarray],
                     y_train: list[np.ndarray], X_val: np.ndarray, y_val: np.ndarray, method: str, threads: int,
                     device: str, precision: str) -> list:
    """Every replicate of one strategy (or of the supervised baseline) as one batched model."""
    torch.set_num_threads(threads)
    options = {"on_event": send_event, "should_stop": stop_requested, "device": device, "precision": precision}
    if configs[0].strategy == SUPERVISED:
        return train_supervised_replicates(X_train, y_train, X_val, y_val, configs, encoder_config, **options)
    return finetune_replicates(encoders, X_train, y_train, X_val, y_val, configs, pretraining=method, **options)


#: Above this many rows HistGradientBoosting draws a random subsample for its bin edges (scikit-learn's
#: `subsample` of the binning), so its fit depends on the seed as well as the rows.
DETERMINISTIC_FIT_ROWS = 200_000


def shared_fit(labelled: list[np.ndarray], replicate: int) -> int:
    """The replicate whose classical fit `replicate` reuses: the first with the same labelled rows.
    A classical fit draws nothing once the validation rows are given (up to DETERMINISTIC_FIT_ROWS
    rows), so replicates on the same rows (every one at label fraction 1) would fit the same model
    again; they share one fit, and its spread over replicates is honestly 0."""
    rows = np.sort(labelled[replicate])
    if len(rows) > DETERMINISTIC_FIT_ROWS:
        return replicate
    return next(q for q in range(replicate + 1) if np.array_equal(np.sort(labelled[q]), rows))


def labelled_rows(study: Study, replicate: int, seed: int) -> np.ndarray:
    """The labelled training rows of a replicate: the study's own for replicate 0 (today's
    models), a fresh stratified draw of the same fraction for the others."""
    if replicate == 0:
        return study.split.labelled_train
    return redraw_labelled_train(study.split, study.data.y, study.data.groups, seed=seed).labelled_train


def pretrain_one(X_train: np.ndarray, X_val: np.ndarray, layout: FeatureLayout, config: PretrainConfig,
                 replicate: int, checkpoint_dir: Path, threads: int) -> PretrainResult:
    """One replicate's pretraining (a worker process may run it); its events carry "replicate"."""
    torch.set_num_threads(threads)
    return pretrain(X_train, X_val, layout, config, on_event=lambda event: send_event({**event, "replicate": replicate}),
                    should_stop=stop_requested, checkpoint_dir=checkpoint_dir)


def finetune_one(finetune_config: FinetuneConfig, encoder, encoder_config, X_train: np.ndarray, y_train: np.ndarray,
                 X_val: np.ndarray, y_val: np.ndarray, method: str, threads: int, replicate: int = 0,
                 device: str = "cpu", precision: str = "fp32", **finetune_options):
    """One fine-tuning task (a worker process may run it): a strategy, or the supervised baseline;
    `finetune_options` (a debiasing `hook`, a variant's `name`) go to the fine-tuning as they are."""
    torch.set_num_threads(threads)

    def on_event(event: dict) -> None:
        send_event({**event, "replicate": replicate})

    options = {"on_event": on_event, "should_stop": stop_requested, "device": device, "precision": precision,
               **finetune_options}
    if finetune_config.strategy == SUPERVISED:
        return train_supervised(X_train, y_train, X_val, y_val, finetune_config, encoder_config, **options)
    return finetune(encoder, X_train, y_train, X_val, y_val, finetune_config, pretraining=method, **options)


def pretrain_work(result: PretrainResult, replicate: int, n_validation: int) -> dict:
    """What a pretraining computed: its steps of `batch_size` rows, and one validation pass of
    `n_validation` rows before training and after each completed epoch."""
    return {"task": "pretrain", "replicate": replicate, "method": result.config.method, "steps": result.steps,
            "batch_size": result.config.batch_size, "validation_passes": result.epochs_completed + 1,
            "n_validation": n_validation, "precision": result.precision}


def finetune_work(model, replicate: int) -> dict:
    """What a fine-tuning computed: epochs over n_train rows (gradual: the blocks each epoch
    trained), validation passes over n_val rows; head-only strategies embed the rows once."""
    extra = getattr(model, "extra", {}) or {}
    epochs = [{"unfrozen_blocks": len(record.get("unfrozen_blocks", []))} if "unfrozen_blocks" in record else {}
              for record in model.history if "epoch" in record and "train_loss" in record]
    return {"task": "finetune", "replicate": replicate, "strategy": model.strategy, "n_train": extra.get("n_train"),
            "n_val": extra.get("n_val"), "epochs": epochs, "bn_stat_batches": extra.get("bn_stat_batches")}
