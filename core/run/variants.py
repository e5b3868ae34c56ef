"""Variants: models that change another model of the audit, trained after the audit's own
models and compared with the one they change (its "base").

A mitigation (a fairlearn reduction over a classical baseline, a fairness penalty in
fine-tuning), a differentially private fine-tuning or a federated pretraining answers "what
would this change do to that model?". So each variant names its base, is trained once per
replicate like every other model (replicate r from replicate r's seed, rows and encoder), is
audited like every other model, and is compared with its base over every replicate and the
test rows together (core.run.replicates: `compared_with_base`, Holm family "variant_vs_base").

A feature adds variants through a builder listed in BUILDERS ("module:function"):

    builder(context: VariantContext) -> list[Task]

Each Task (core.run.parallel) has key (variant name, replicate) and returns a model: an object
with `name`, `pretraining`, `strategy`, `n_trainable_params`, `calibration` (or None),
`predict_proba(X)`, `embed(X)` (or None), `save(directory)`, `history` (a list), and
`base` (the name of the audit model it changes). Optional dicts it may carry, copied into its
report.json entry: `mitigation` ({"name", "kind", "base", "params"}) and `privacy`
({"epsilon", "delta", ...} or {"federated": {...}}). A builder returns [] when the config asks
for none of its variants, and tasks for every replicate of every variant it makes.
Builders are imported only when an audit runs (each may load a heavy library).
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.data.study import Study
from core.learning.pretrain import PretrainResult
from core.run.config import AuditConfig
from core.errors import Cancelled, InputError
from core.run.parallel import Task, Workers

#: Every variant builder, "module:function", in the order their variants join the audit.
BUILDERS: tuple[str, ...] = (
    "core.run.mitigation_models:variant_tasks",
    "core.run.debias_models:variant_tasks",
    "core.run.federated_models:variant_tasks",
    "core.run.private_models:variant_tasks",
)

#: Task priority of a variant: after every pretraining and strategy (core.run.training's 0-2).
VARIANT = 3


@dataclass(frozen=True)
class VariantContext:
    """What a builder may read: the audit's config and study, and per replicate r its
    pretraining, its trained models (config.strategies, the supervised baseline, the classical
    baselines, in that order) and its labelled training rows."""

    config: AuditConfig
    study: Study
    pretrained: list[PretrainResult]
    models: list[list[Any]]
    labelled: list[np.ndarray]
    device: str = "cpu"
    precision: str = "fp32"
    # What the reviewer must hear about the variants (one asked for but not applicable, one that
    # failed): builders append plain sentences; the pipeline puts them in report["warnings"].
    notes: list[str] = field(default_factory=list)

    def model(self, replicate: int, name: str) -> Any:
        """Replicate `replicate`'s model called `name` (a base)."""
        return next(m for m in self.models[replicate] if m.name == name)


def variant_tasks(context: VariantContext, builders: tuple[str, ...] | None = None) -> list[Task]:
    """Every builder's tasks (BUILDERS unless given), checked: one task per replicate of each name."""
    tasks: list[Task] = []
    for spec in BUILDERS if builders is None else builders:
        module, function = spec.split(":")
        build: Callable[[VariantContext], list[Task]] = getattr(importlib.import_module(module), function)
        tasks += build(context)
    keys = [task.key for task in tasks]
    replicates = set(range(len(context.models)))
    for name in dict.fromkeys(name for name, _ in keys):
        if sorted(r for n, r in keys if n == name) != sorted(replicates):
            raise ValueError(f"Variant '{name}' must have exactly one task per replicate")
    return tasks


@dataclass(frozen=True)
class Failed:
    """What a variant task returns instead of its model when it failed: the reason, in one line."""

    reason: str


def guarded(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)`, or Failed(reason) if it raises: a variant that fails (a fairlearn fit
    that does not converge, a bug in one mitigation) is left out and said so, and never throws
    away the audit's own models, trained and waiting. Cancel still stops the audit."""
    try:
        return function(*args)
    except Cancelled:
        raise
    except InputError as error:
        return Failed(str(error))
    except Exception as error:  # any other failure of one variant: recorded, the audit goes on
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        return Failed(last[:300])


def train_variants(workers: Workers, context: VariantContext, tasks: list[Task],
                   on_finished: Callable[[str, int, Any], None] | None = None) -> list[list[Any]]:
    """Run the variant tasks on the workers; per replicate, its variants in the tasks' order.
    A variant with a failed replicate is left out of every replicate (a variant's replicates
    are compared with its base's, one for one), with a note in `context.notes`."""
    if not tasks:
        return [[] for _ in context.models]

    def on_done(task: Task, result: Any) -> list[Task]:
        if on_finished is not None and not isinstance(result, Failed):
            on_finished(task.key[0], task.key[1], result)
        return []

    results = workers.run([Task(t.priority, t.key, guarded, (t.function, *t.args)) for t in tasks], on_done=on_done)
    names = list(dict.fromkeys(name for name, _ in (task.key for task in tasks)))
    kept = []
    for name in names:
        failed = [results[name, r] for r in range(len(context.models)) if isinstance(results[name, r], Failed)]
        if failed:
            context.notes.append(f"The variant '{name}' failed and is left out of this audit: {failed[0].reason}")
        else:
            kept.append(name)
    return [[results[name, r] for name in kept] for r in range(len(context.models))]
