"""Federated SSL pretraining (issue 19) as variants of the audit (core.run.variants).

    check_federated(config, study)           right after the study is made: bad --federated-by stops
                                             before any training (InputError, exit 2)
    variant_tasks(context) -> list[Task]     listed in core.run.variants.BUILDERS

With `config.federated_by` set, the builder pretrains one federated encoder per replicate
(core.learning.federated: replicate r's PretrainConfig and seed, the pretraining rows split
into sites by the column, every replicate in one Flower simulation, in this process), then
returns one fine-tuning task per (strategy, replicate): "{method}-fed+{strategy}", fine-tuned
exactly like its base "{method}+{strategy}" (core.run.training.finetune_config_for: replicate
r's seed and labelled rows), so the two differ by the pretraining alone. Each is a
TrainedClassifier (saved, loaded and explained as before) carrying `base` and
`privacy` = {"federated": {"by", "sites", "rounds", "strategy", "local_epochs", "rows_per_site",
"pretraining_epochs", "central_epochs", "by_sensitive_attribute", "round_losses"}}, kept in its
saved model.json's extra too.

The federated encoder trains rounds x local_epochs passes over each site's rows; the central
one `config.epochs` (both keep their best validation epoch or round). Both numbers are in the
entry, so a reader can see whether the comparison gave both the same passes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.data.study import Study
from core.errors import InputError
from core.learning.federated_sites import check_sites, site_labels
from core.learning.finetune.config import FinetuneConfig
from core.run.config import AuditConfig
from core.run.parallel import Task, default_workers
from core.run.training import finetune_config_for, finetune_one
from core.run.variants import VARIANT, VariantContext
from core.vocabulary import model_name

#: What a federated encoder's pretraining is called in model names: "scarf-fed+linear".
FEDERATED_SUFFIX = "-fed"


def federated_name(method: str, strategy: str) -> str:
    """The federated counterpart of model_name(method, strategy)."""
    return model_name(f"{method}{FEDERATED_SUFFIX}", strategy)


def sites_of_rows(study: Study, column: str) -> np.ndarray:
    """Every row's site (text; MISSING_SITE where the column is empty)."""
    return site_labels(study.data.frame[column])


def check_federated(config: AuditConfig, study: Study) -> dict[str, int] | None:
    """The pretraining rows per site of config.federated_by (None without it), or InputError:
    not a column, the target, a personal-data column kept out of the reports (its values would
    name the sites in them), or not 2-20 sites of enough rows (core.learning.federated_sites)."""
    column = config.federated_by
    if not column:
        return None
    columns = [str(c) for c in study.data.frame.columns]
    if column not in columns:
        raise InputError(f"--federated-by '{column}' is not a column of the table",
                         f"Choose one of: {', '.join(columns[:12])}"
                         + (f" (and {len(columns) - 12} more)" if len(columns) > 12 else ""))
    if column == study.spec.target:
        raise InputError(f"--federated-by '{column}' is the target", "Sites come from another column")
    if column in study.data.withheld_columns:
        raise InputError(f"--federated-by '{column}' holds personal data, kept out of reports",
                         "Choose another column, or allow it with --include-pii")
    return check_sites(sites_of_rows(study, column)[study.split.pretrain], column)


def variant_tasks(context: VariantContext) -> list[Task]:
    """Federated encoders per replicate, then their fine-tuning tasks (module docstring)."""
    from dataclasses import replace

    from core.learning.federated import pretrain_federated_replicates  # torch and flwr: only when asked for
    from core.learning.ssl.views import FeatureLayout

    config, study = context.config, context.study
    if not config.federated_by:
        return []
    check_federated(config, study)
    X, split = study.X, study.split
    sites = sites_of_rows(study, config.federated_by)
    configs = [replace(result.config, device="cpu") for result in context.pretrained]
    results = pretrain_federated_replicates(
        X[split.pretrain], sites[split.pretrain], X[split.validation], FeatureLayout.from_encoder(study.encoder),
        configs, config.federated_rounds, config.federated_local_epochs, config.federated_strategy,
        by=config.federated_by, row_ids=split.pretrain,
        num_cpus=int(config.workers) or default_workers())  # the audit's process limit caps Ray's CPUs too
    tasks: list[Task] = []
    for r, (seed, result) in enumerate(zip(config.replicate_seeds, results)):
        privacy = {"federated": {**result.federated,  # with each client's digest of the row ids it held
                                 "pretraining_epochs": config.federated_rounds * config.federated_local_epochs,
                                 "central_epochs": config.epochs,
                                 "by_sensitive_attribute": config.federated_by in config.sensitive,
                                 "round_losses": [{k: entry[k] for k in ("round", "train_loss", "val_loss",
                                                                         "site_losses", "site_loss_spread")}
                                                  for entry in result.history]}}
        rows = context.labelled[r]
        for strategy in config.strategies:
            tasks.append(Task(VARIANT, (federated_name(config.method, strategy), r), finetune_federated,
                              (finetune_config_for(config, len(split.labelled_train), strategy, seed),
                               result.encoder, X[rows], study.labels(rows), X[split.validation],
                               study.labels(split.validation), config.method, config.threads, r, context.device,
                               context.precision, privacy)))
    return tasks


def finetune_federated(finetune_config: FinetuneConfig, encoder: Any, X_train: np.ndarray, y_train: np.ndarray,
                       X_val: np.ndarray, y_val: np.ndarray, method: str, threads: int, replicate: int, device: str,
                       precision: str, privacy: dict) -> Any:
    """One federated encoder fine-tuned like its base (a worker process may run it)."""
    model = finetune_one(finetune_config, encoder, None, X_train, y_train, X_val, y_val,
                         f"{method}{FEDERATED_SUFFIX}", threads, replicate, device, precision)
    model.base = model_name(method, finetune_config.strategy)
    model.privacy = privacy
    model.extra["privacy"] = privacy
    return model
