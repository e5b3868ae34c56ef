"""Federated SSL pretraining in Flower's simulation engine: each site trains the SSL objective
on its own rows, and only model updates reach the server, which averages them (FedAvg).

    result = pretrain_federated(X_pretrain, site_of_row, X_val, layout, PretrainConfig(epochs=...),
                                rounds=5, local_epochs=1, strategy="fedavg", by="workclass")
    result.encoder, result.federated["rows_per_site"], result.history   # one entry per round

Flower does the federation (flwr.simulation.run_simulation, a ServerApp running
flwr.serverapp.strategy.FedAvg, a ClientApp per site in Ray actors); nothing here aggregates or
routes messages itself. Each site's rows are written to their own file before the simulation,
and a client opens only the file of its own site (its Flower partition id): no client is
given, or could read from its arguments, the pooled matrix. A client reports its rows' count
(FedAvg's weight) and a digest of its row ids, so a test can check what each site held.

One round at site k, of n_k rows: the global weights are loaded into a fresh objective, and
`local_epochs` epochs of core.learning.pretrain's own step run over the site's rows (the same
views, AdamW, warm-up + cosine schedule, planned over rounds * local_epochs epochs of the
site's steps, round r starting where round r - 1 ended). The server's weights are then
    w = sum_k n_k w_k / sum_k n_k        (FedAvg, McMahan et al. 2017)
The optimiser's moments start afresh each round at every site (clients keep no state between
rounds). Seeds: site k in round r draws its views and dropout from seed + k + (r - 1) * K (K
sites), so one site and one round replay central pretraining exactly (tested).

What is averaged: the objective's parameters and BatchNorm running statistics (mean and
variance, weighted by rows like the weights). One encoder serves every site's rows after
pretraining (fine-tuning, the audit's test rows from all sites), so it needs one set of
statistics; FedBN (statistics kept at the site) would leave none for rows of a new site.
Other buffers (MoCo's queue of key embeddings, DeepCluster's centroids) stay at the site and
restart each round: a queue of embeddings of a site's rows is not sent to the server.
The global model's validation loss (the study's validation rows, which the server holds as
the audit does) is measured after every round; the encoder of the best round is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import Cancelled, InputError
from core.learning.federated_config import check_federated_settings
from core.learning.federated_sites import check_sites, site_labels
from core.learning.models import Encoder
from core.learning.pretrain import (COLLAPSE_ROWS, PretrainConfig, PretrainResult, _batching, _before_epoch,
                                    _collapse_check, _diverged, _epoch_batches, _fresh_state, _lr_at, _on_device,
                                    _step, _validation_loss, _validation_rows)
from core.learning.ssl.base import Objective
from core.learning.ssl.views import FeatureLayout

Event = Callable[[dict], None]
#: Ray's shared-object store for the simulation: the messages are a few small models.
OBJECT_STORE_BYTES = 96 * 1024 * 1024
_CPU = torch.device("cpu")


@dataclass
class FederatedPretrainResult(PretrainResult):
    """A PretrainResult whose history has one entry per round, plus `federated`: by, sites,
    rounds, strategy, local_epochs, rows_per_site, and per round each site's training loss."""

    federated: dict[str, Any] = field(default_factory=dict)


def rows_digest(rows: np.ndarray) -> str:
    """A short fingerprint of a set of row ids (order ignored): what a client reports it held."""
    return hashlib.sha256(np.sort(np.asarray(rows, dtype=np.int64)).tobytes()).hexdigest()[:16]


def local_seed(seed: int, site: int, round_: int, n_sites: int) -> int:
    """The seed of site `site`'s views and dropout in round `round_` (1-based): the module docstring."""
    return int(seed) + site + (round_ - 1) * n_sites


def exchanged_names(objective: Objective) -> list[str]:
    """The entries of the objective's state that the server averages: parameters and BatchNorm
    running statistics (module docstring)."""
    parameters = {name for name, _ in objective.named_parameters()}
    return [name for name in objective.state_dict()
            if name in parameters or name.endswith(("running_mean", "running_var"))]


def _load_exchanged(objective: Objective, arrays: dict[str, torch.Tensor]) -> None:
    state = objective.state_dict()
    state.update({name: torch.as_tensor(value).to(state[name].dtype) for name, value in arrays.items()})
    objective.load_state_dict(state)


def _exchanged(objective: Objective) -> dict[str, torch.Tensor]:
    state = objective.state_dict()
    return {name: state[name].detach().cpu().clone() for name in exchanged_names(objective)}


def local_round(arrays: dict[str, torch.Tensor], X_site: np.ndarray, layout: FeatureLayout, config: PretrainConfig,
                *, site: int, n_sites: int, round_: int, rounds: int, local_epochs: int) -> tuple[dict, float, int]:
    """One site's training in one round (module docstring): (new weights, mean training loss of
    its last local epoch, steps taken). Runs on the CPU with torch's global RNG forked."""
    schedule = replace(config, seed=local_seed(config.seed, site, round_, n_sites), epochs=rounds * local_epochs,
                       device="cpu")
    with torch.random.fork_rng(devices=[]):
        plan = _batching(X_site, layout, schedule, rank=0, world=1)
        state = _fresh_state(schedule, layout=layout, n_features=plan.n_features, device=_CPU, world=1)
        _load_exchanged(state.objective, arrays)
        state.step = (round_ - 1) * local_epochs * plan.steps_per_epoch
        rows = _on_device(X_site, "site's training", _CPU)
        state.objective.train()
        loss = float("nan")
        for epoch in range(local_epochs):
            _before_epoch(state, rows)
            total = torch.zeros(())
            for xb in _epoch_batches(rows, epoch=epoch, batch_size=plan.batch, generator=state.generator, device=_CPU):
                lr = _lr_at(state.step, plan.total_steps, schedule)
                total += _step(state, xb, lr=lr, shard=None, total_steps=plan.total_steps,
                               precision=config.precision).detach()
            loss = float(total) / max(plan.steps_per_epoch, 1)
            if not np.isfinite(loss):
                raise _diverged(config, loss, (round_ - 1) * local_epochs + epoch + 1)
        return _exchanged(state.objective), loss, local_epochs * plan.steps_per_epoch


def _train_site(message, context, site_dir: str, layout: FeatureLayout):
    """The ClientApp's train handler: this site's rows from its own file, one local round."""
    from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict  # in the Ray actor only

    torch.set_num_threads(1)  # one Ray CPU per client (the backend's client_resources)
    site, n_sites = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    with np.load(Path(site_dir) / f"site{site}.npz") as held:
        X_site, row_ids = held["X"], held["rows"]
    settings = message.content["config"]
    config = PretrainConfig.from_dict(json.loads(str(settings["pretrain"])))
    arrays, loss, steps = local_round(message.content["arrays"].to_torch_state_dict(), X_site, layout, config,
                                      site=site, n_sites=n_sites, round_=int(settings["server-round"]),
                                      rounds=int(settings["rounds"]), local_epochs=int(settings["local-epochs"]))
    reply = RecordDict({"arrays": ArrayRecord.from_torch_state_dict(arrays),
                        "metrics": MetricRecord({"num-examples": len(X_site), "train-loss": loss, "steps": steps}),
                        "site": ConfigRecord({"site": site, "rows-digest": rows_digest(row_ids)})})
    return Message(content=reply, reply_to=message)


def _client_app(site_dir: str, layout: FeatureLayout):
    from flwr.clientapp import ClientApp  # flwr loads only when a federated audit runs (start-up cost)

    app = ClientApp()

    @app.train()
    def train(message, context):
        return _train_site(message, context, site_dir, layout)

    return app


def _recording_fedavg(n_sites: int):
    """Flower's FedAvg over every site each round, which also keeps each site's reply (its
    loss, rows and row digest) and refuses a round in which a site failed."""
    from flwr.serverapp.strategy import FedAvg  # start-up cost: see _client_app

    class RecordingFedAvg(FedAvg):
        def __init__(self) -> None:
            super().__init__(fraction_evaluate=0.0, min_train_nodes=n_sites, min_available_nodes=n_sites)
            self.replies: dict[int, dict[int, dict]] = {}

        def aggregate_train(self, server_round, replies):
            replies = list(replies)
            failed = [reply for reply in replies if reply.has_error()]
            if failed or len(replies) < n_sites:
                reason = failed[0].error.reason if failed else f"{len(replies)} of {n_sites} sites replied"
                raise InputError(f"Federated pretraining failed in round {server_round}: {reason}",
                                 "Check the sites' rows, or pretrain centrally")
            self.replies[server_round] = {int(r.content["site"]["site"]): {**dict(r.content["metrics"]),
                                                                           **dict(r.content["site"])}
                                          for r in replies}
            return super().aggregate_train(server_round, replies)

    return RecordingFedAvg()


@dataclass
class _Federation:
    """What one simulation trains: every replicate's config on the same sites."""

    configs: list[PretrainConfig]
    layout: FeatureLayout
    X_val: torch.Tensor | None
    n_features: int
    sites: dict[str, int]
    by: str
    rounds: int
    local_epochs: int
    strategy: str
    on_event: Event | None
    should_stop: Callable[[], bool] | None
    results: list[FederatedPretrainResult] = field(default_factory=list)

    def run_replicate(self, grid, replicate: int) -> FederatedPretrainResult:
        from flwr.app import ArrayRecord, ConfigRecord  # start-up cost: see _client_app

        config, started = self.configs[replicate], time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            objective = _fresh_state(config, layout=self.layout, n_features=self.n_features, device=_CPU,
                                     world=1).objective
        names = list(self.sites)
        history: list[dict[str, Any]] = []
        best: dict[str, Any] = {"val": None, "round": 0, "encoder": None}
        strategy = _recording_fedavg(len(names))

        def evaluate(server_round: int, arrays) -> None:
            if self.should_stop is not None and self.should_stop():
                raise Cancelled()
            _load_exchanged(objective, arrays.to_torch_state_dict())
            val = None
            if self.X_val is not None:
                val = _validation_loss(objective, self.X_val, batch_size=min(config.batch_size, len(self.X_val)),
                                       seed=config.seed, precision=config.precision)
            if server_round == 0:
                best["initial"] = val
                return None
            replies = strategy.replies[server_round]
            losses = {names[k]: float(reply["train-loss"]) for k, reply in sorted(replies.items())}
            rows = sum(self.sites.values())
            entry = {"epoch": server_round, "round": server_round, "val_loss": val,
                     "train_loss": sum(losses[s] * self.sites[s] for s in names) / rows,
                     "site_losses": losses, "site_loss_spread": max(losses.values()) - min(losses.values()),
                     "steps": sum(int(reply["steps"]) for reply in replies.values())}
            history.append(entry)
            if best["encoder"] is None or val is None or val < best["val"]:
                best.update(val=val, round=server_round,
                            encoder={k: v.clone() for k, v in objective.encoder.state_dict().items()})
            if self.on_event is not None:
                self.on_event({"stage": "pretrain", "message": f"federated round {server_round}/{self.rounds}",
                               "replicate": replicate, "epoch": server_round, "epochs": self.rounds,
                               "step": server_round, "total_steps": self.rounds, "loss": entry["train_loss"],
                               "val_loss": val})
            return None

        settings = ConfigRecord({"pretrain": json.dumps(config.to_dict()), "rounds": self.rounds,
                                 "local-epochs": self.local_epochs})
        initial = ArrayRecord.from_torch_state_dict(_exchanged(objective))
        strategy.start(grid, initial, num_rounds=self.rounds, train_config=settings, evaluate_fn=evaluate)
        encoder = Encoder(objective.encoder.config)
        encoder.load_state_dict(best["encoder"])
        encoder.eval()
        probe = self.X_val[:COLLAPSE_ROWS] if self.X_val is not None else None
        collapse = _collapse_check(encoder, probe, method=config.method, emit=self.on_event or (lambda _: None)) \
            if probe is not None else {}
        digests = {names[k]: reply["rows-digest"] for k, reply in strategy.replies[1].items()}
        steps = sum(entry["steps"] for entry in history)
        elapsed = time.perf_counter() - started
        return FederatedPretrainResult(
            encoder=encoder, config=config, history=history, best_epoch=best["round"], best_val_loss=best["val"],
            initial_val_loss=best.get("initial"), final_loss=history[-1]["train_loss"],
            rows_per_second=sum(self.sites.values()) * self.rounds * self.local_epochs / max(elapsed, 1e-9),
            elapsed_seconds=elapsed, collapse=collapse, stopped_early=False, cancelled=False,
            epochs_completed=self.rounds, steps=steps, total_steps=steps, device="cpu", world_size=len(names),
            precision=config.precision,
            federated={"by": self.by, "sites": len(names), "rounds": self.rounds, "strategy": self.strategy,
                       "local_epochs": self.local_epochs, "rows_per_site": dict(self.sites),
                       "rows_digest_per_site": digests, "best_round": best["round"]})


def _server_app(federation: _Federation):
    from flwr.serverapp import ServerApp  # start-up cost: see _client_app

    app = ServerApp()

    @app.main()
    def main(grid, context) -> None:
        for replicate in range(len(federation.configs)):
            federation.results.append(federation.run_replicate(grid, replicate))

    return app


def pretrain_federated(X_pretrain: np.ndarray, site_of_row: np.ndarray, X_val: np.ndarray | None,
                       layout: FeatureLayout, config: PretrainConfig, rounds: int, local_epochs: int,
                       strategy: str = "fedavg", **options: Any) -> FederatedPretrainResult:
    """Federated pretraining of one config (the module docstring); `options` as in
    `pretrain_federated_replicates`."""
    return pretrain_federated_replicates(X_pretrain, site_of_row, X_val, layout, [config], rounds, local_epochs,
                                         strategy, **options)[0]


def pretrain_federated_replicates(X_pretrain: np.ndarray, site_of_row: np.ndarray, X_val: np.ndarray | None,
                                  layout: FeatureLayout, configs: list[PretrainConfig], rounds: int,
                                  local_epochs: int, strategy: str = "fedavg", *, by: str = "site",
                                  row_ids: np.ndarray | None = None, num_cpus: int | None = None,
                                  on_event: Event | None = None,
                                  should_stop: Callable[[], bool] | None = None) -> list[FederatedPretrainResult]:
    """Every config's federated pretraining (one per training replicate) in ONE Flower simulation,
    so Ray starts once. `site_of_row[i]` names the site of row i of X_pretrain; `row_ids` are
    the rows' ids in the study (default 0..n-1), reported back by each client as a digest;
    `num_cpus` caps Ray's CPUs (default: this machine's)."""
    from flwr.simulation import run_simulation  # start-up cost: see _client_app

    check_federated_settings(rounds, local_epochs, strategy)
    for config in configs:
        config.validate()
    X_pretrain = np.asarray(X_pretrain, dtype=np.float32)
    sites = site_labels(site_of_row)
    counts = check_sites(sites, by, min_sites=1)
    row_ids = np.arange(len(X_pretrain)) if row_ids is None else np.asarray(row_ids, dtype=np.int64)
    federation = _Federation(configs=list(configs), layout=layout, X_val=_validation_rows(X_val, _CPU),
                             n_features=X_pretrain.shape[1], sites=counts, by=by, rounds=int(rounds),
                             local_epochs=int(local_epochs), strategy=strategy, on_event=on_event,
                             should_stop=should_stop)
    cpus = max(1, min(int(num_cpus or os.cpu_count() or 1), len(counts)))
    backend = {"init_args": {"address": "local", "num_cpus": cpus, "num_gpus": 0, "object_store_memory": OBJECT_STORE_BYTES,
                             "include_dashboard": False, "log_to_driver": False},
               "client_resources": {"num_cpus": 1, "num_gpus": 0}}
    with tempfile.TemporaryDirectory(prefix="equiscope-sites-") as site_dir, _quiet_flower():
        for k, site in enumerate(counts):  # each site's rows in its own file, the only one its client opens
            mask = sites == site
            np.savez(Path(site_dir) / f"site{k}.npz", X=X_pretrain[mask], rows=row_ids[mask])
        run_simulation(server_app=_server_app(federation), client_app=_client_app(site_dir, layout),
                       num_supernodes=len(counts), backend_config=backend)
    if len(federation.results) != len(configs):
        raise RuntimeError("the federated simulation ended before every replicate was pretrained")
    return federation.results


class _quiet_flower:
    """Flower logs every round at INFO and warns that run_simulation will move to `flwr run`
    (a project folder and a CLI, not an API for a library); its backend also rewrites
    PYTHONPATH for Ray's workers. Both are put back afterwards."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("flwr")
        self.level, self.pythonpath = self.logger.level, os.environ.get("PYTHONPATH")
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)
        if self.pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = self.pythonpath
