"""`pretrain_replicates`: the R replicates of one pretraining recipe trained as one batched model.

    results = pretrain_replicates(X_train, X_val, layout, [replace(config, seed=s) for s in seeds],
                                  on_event=print, should_stop=lambda: False)
    # results[r] is what pretrain(X_train, X_val, layout, configs[r]) returns, up to rounding

One step for all replicates (core.learning.batched.stacking holds the (R, ...) tensors):
    for every r:  x_r = replicate r's next batch      (its own permutation, its own generator)
                  views_r = objective_r.make_views(x_r, generator_r)        (outside vmap)
    losses = vmap(objective forward)(stacked parameters, stacked buffers, stacked views)  (R,)
    sum(losses).backward()      d sum / d theta_r = d loss_r / d theta_r: no coupling
    AdamW.step()                elementwise on the stacks = R separate AdamWs (no clipping)
    stack.after_step(t, T)      BYOL's EMA, elementwise on the stacks
Per replicate, as `pretrain` does it (and with its own helpers): initialisation from its seed
(`_fresh_state` inside the forked global RNG), permutations and views from its generator,
AdamW moments, BatchNorm running statistics, validation loss (views re-seeded from its seed),
early stopping (`TrainingState.keep_if_best`), the best encoder, the collapse check. The
learning rate is the same for all: they share the schedule and take their steps together.

A replicate that stops early keeps its best encoder and history from then on, as its solo run
would; its row of the stacks goes on stepping with the others (one batched step costs the same
either way) but nothing computed after its stop is kept or reported. The loop ends when every
replicate has stopped or run all epochs. Cancel (`should_stop`) is polled after every step:
every replicate still training ends `cancelled`, without its partial epoch, as in `pretrain`.

Events: pretrain's events, one per replicate, with {"replicate": r, "replicates": R} added;
"rows_per_second" is the replicate's own rate (the batch's rate is R times it).

Where the batched model cannot reproduce the solo runs, the replicates are pretrained one after
another by `pretrain` itself: R == 1, a streamed (ChunkSource) training table, DDP (torchrun),
an encoder with dropout (dropout draws from the global RNG inside the forward pass, which a
vmapped forward cannot split into the solo runs' streams), or an objective with an epoch-start
hook (DeepCluster: k-means per replicate, and a head re-initialised with fresh AdamW state).
After a cancel the list then ends with the cancelled replicate. No epoch checkpoints are written: a batched run restarts.
A replicate whose training loss is not finite raises pretrain's InputError for the whole
batch (its solo run would have raised; the others' results are not returned half-done).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from core.learning.batched.replica_set import Event, check_replicate_configs, replicate_events
from core.learning.batched.stacking import StackedReplicas
from core.learning.precision import autocast, resolve_precision
from core.learning.pretrain import (COLLAPSE_ROWS, Clock, PretrainResult, _batching, _best_encoder, _collapse_check,
                                    _diverged, _first_rows, _fresh_state, _lr_at, _on_device, _validation_loss,
                                    _validation_rows, embed, pretrain, resolve_device)
from core.learning.pretrain_config import PretrainConfig
from core.learning.pretrain_state import TrainingState
from core.learning.ssl import get_method
from core.learning.ssl.base import Objective
from core.learning.ssl.collapse import collapse_report
from core.learning.ssl.views import FeatureLayout
from core.learning.streaming import ChunkSource, array_batches

EVENT_SECONDS = 0.5  # step events at most this often (per replicate); always one at an epoch's end


def pretrain_replicates(X_train: np.ndarray | ChunkSource, X_val: np.ndarray | None, layout: FeatureLayout,
                        configs: Sequence[PretrainConfig], *, on_event: Event | None = None,
                        should_stop: Callable[[], bool] | None = None) -> list[PretrainResult]:
    """Pretrain one encoder per config (the configs differ only in `seed`) as one batched model;
    see the module docstring. Returns one PretrainResult per config, in order."""
    configs = list(configs)
    check_replicate_configs(configs, "pretraining")
    for config in configs:
        config.validate()
    if not batchable(X_train, configs):
        return _one_after_another(X_train, X_val, layout, configs, on_event=on_event, should_stop=should_stop)
    return _Batched(X_train, X_val, layout, configs, on_event, should_stop).run()


def batchable(X_train: np.ndarray | ChunkSource, configs: Sequence[PretrainConfig]) -> bool:
    """True where the batched model reproduces the solo runs (see the module docstring)."""
    encoder = configs[0].encoder_config(1)
    return (len(configs) > 1 and not isinstance(X_train, ChunkSource) and encoder.dropout == 0
            and int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not _has_epoch_hook(configs[0].method))


def _has_epoch_hook(method: str) -> bool:
    """An objective with a `before_epoch` (DeepCluster's k-means): the batched loop has no such
    step, and a re-initialised head's AdamW state cannot be restarted for one row of a stack."""
    return get_method(method).before_epoch is not Objective.before_epoch


def _one_after_another(X_train, X_val, layout, configs, *, on_event, should_stop) -> list[PretrainResult]:
    results = []
    for r, config in enumerate(configs):
        results.append(pretrain(X_train, X_val, layout, config, on_event=replicate_events(on_event, r, len(configs)),
                                should_stop=should_stop))
        if results[-1].cancelled:
            break
    return results


class _Batched:
    """One batched pretraining run: the replicates' states and the loop over their epochs."""

    def __init__(self, X_train: np.ndarray, X_val: np.ndarray | None, layout: FeatureLayout,
                 configs: list[PretrainConfig], on_event: Event | None, should_stop: Callable[[], bool] | None):
        self.X_train, self.X_val, self.layout, self.configs = X_train, X_val, layout, configs
        self.should_stop = should_stop
        self.emit = [replicate_events(on_event, r, len(configs)) or _ignore for r in range(len(configs))]
        self.device = resolve_device(configs[0].device)
        self.precision = resolve_precision(configs[0].precision, self.device)

    def run(self) -> list[PretrainResult]:
        device, configs = self.device, self.configs
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            plan = _batching(self.X_train, self.layout, configs[0], rank=0, world=1)
            # Each replicate starts exactly as its solo run: pretrain's own initialisation.
            states = [_fresh_state(c, layout=self.layout, n_features=plan.n_features, device=device, world=1)
                      for c in configs]
            stack = StackedReplicas([s.objective for s in states])
            optimizer = _adamw(stack, configs[0])
            for state in states:
                state.optimizer = optimizer  # one optimiser over the stacks: each replicate's is its row
            train_rows = _on_device(self.X_train, "training", device)
            val_rows = _validation_rows(self.X_val, device)
            if val_rows is not None:
                for state, config in zip(states, configs):
                    state.initial_val = self._val_loss(state, val_rows, plan.batch, config.seed)
            clock = Clock()
            seconds = [0.0] * len(configs)  # each replicate's training seconds until it stopped
            cancelled = self._train(stack, states, optimizer, train_rows, val_rows, plan, clock, seconds)
            return [self._result(r, state, plan, clock, seconds[r], cancelled and not state.stopped_early, val_rows)
                    for r, state in enumerate(states)]

    def _train(self, stack: StackedReplicas, states: list[TrainingState], optimizer: torch.optim.Optimizer,
               train_rows: torch.Tensor, val_rows: torch.Tensor | None, plan, clock: Clock,
               seconds: list[float]) -> bool:
        """The epochs of every replicate still training; True if cancelled."""
        config, device, n = self.configs[0], self.device, len(states)
        step, cancelled = states[0].step, False
        stack.module.train()
        while any(_training(s, config) for s in states) and not cancelled:
            active = [r for r, s in enumerate(states) if _training(s, config)]
            epoch = states[active[0]].epoch + 1
            epoch_start = time.perf_counter()
            loss_sum = torch.zeros(n, device=device)
            epochs = [array_batches(train_rows, plan.batch, s.generator) for s in states]
            for batches in zip(*epochs):
                lr = _lr_at(step, plan.total_steps, config)
                losses = self._step(stack, states, batches, optimizer, lr=lr, step=step, total_steps=plan.total_steps)
                step += 1
                loss_sum += losses
                clock.rows += plan.batch
                for r in active:
                    states[r].step = step
                cancelled = bool(self.should_stop()) if self.should_stop else False
                now = time.perf_counter()
                if now - clock.last_event >= EVENT_SECONDS or cancelled:
                    clock.last_event = now
                    for r in active:
                        self.emit[r]({"stage": "pretrain", "message": f"epoch {epoch}/{config.epochs}",
                                      "epoch": epoch, "epochs": config.epochs, "step": step,
                                      "total_steps": plan.total_steps, "loss": float(losses[r]),
                                      "rows_per_second": clock.rows_per_second(clock.train_seconds + now - epoch_start),
                                      "elapsed": now - clock.started, "fraction": step / plan.total_steps})
                if cancelled:
                    break
            clock.train_seconds += time.perf_counter() - epoch_start
            for r in active:
                states[r].last_loss = float(losses[r])
                seconds[r] = clock.train_seconds
            if cancelled:
                break  # a partial epoch is not kept, as in pretrain
            for r in active:
                self._end_epoch(r, states[r], float(loss_sum[r]) / max(plan.steps_per_epoch, 1), lr, epoch,
                                val_rows, plan, clock)
        return cancelled

    def _step(self, stack: StackedReplicas, states: list[TrainingState], batches: tuple[torch.Tensor, ...],
              optimizer: torch.optim.Optimizer, *, lr: float, step: int, total_steps: int) -> torch.Tensor:
        """One optimiser step of every replicate on its own batch; returns the (R,) losses, detached."""
        for group in optimizer.param_groups:
            group["lr"] = lr
        views = [s.objective.make_views(xb, s.generator) for s, xb in zip(states, batches)]
        stacked = tuple(torch.stack(parts) for parts in zip(*views))
        with autocast(self.precision, self.device):
            losses, _ = stack(*stacked)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        stack.module.after_step(step, total_steps)
        return losses.detach().float()

    def _end_epoch(self, r: int, state: TrainingState, train_loss: float, lr: float, epoch: int,
                   val_rows: torch.Tensor | None, plan, clock: Clock) -> None:
        """pretrain's end of an epoch, for replicate r: divergence, validation, early stopping."""
        config = self.configs[r]
        if not math.isfinite(train_loss):
            raise _diverged(config, train_loss, epoch)
        entry: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "val_loss": None, "lr": lr,
                                 "embedding_std": None}
        if val_rows is not None:
            entry["val_loss"] = self._val_loss(state, val_rows, plan.batch, config.seed)
            entry["embedding_std"] = collapse_report(
                embed(state.objective.encoder, val_rows[:COLLAPSE_ROWS]))["embedding_std"]
            state.keep_if_best(entry["val_loss"], epoch=epoch, patience=config.patience, min_delta=config.min_delta)
        state.history.append(entry)
        state.epoch = epoch
        self.emit[r]({"stage": "pretrain", "message": f"epoch {epoch}/{config.epochs} done",
                      "epoch": epoch, "epochs": config.epochs, "step": state.step,
                      "total_steps": plan.total_steps, "loss": train_loss, "val_loss": entry["val_loss"],
                      "rows_per_second": clock.rows_per_second(clock.train_seconds),
                      "elapsed": time.perf_counter() - clock.started, "fraction": state.step / plan.total_steps})

    def _val_loss(self, state: TrainingState, val_rows: torch.Tensor, batch: int, seed: int) -> float:
        return _validation_loss(state.objective, val_rows, batch_size=batch, seed=seed, precision=self.precision)

    def _result(self, r: int, state: TrainingState, plan, clock: Clock, seconds: float, cancelled: bool,
                val_rows: torch.Tensor | None) -> PretrainResult:
        config = self.configs[r]
        encoder = _best_encoder(state)
        probe = val_rows[:COLLAPSE_ROWS].cpu() if val_rows is not None else _first_rows(self.X_train)
        collapse = _collapse_check(encoder, probe, method=config.method, emit=self.emit[r])
        return PretrainResult(
            encoder=encoder, config=config, history=state.history, best_epoch=state.best_epoch,
            best_val_loss=state.best_val, initial_val_loss=state.initial_val, final_loss=state.last_loss,
            rows_per_second=state.step * plan.batch / max(seconds, 1e-9),
            elapsed_seconds=time.perf_counter() - clock.started, collapse=collapse,
            stopped_early=state.stopped_early, cancelled=cancelled, epochs_completed=state.epoch,
            steps=state.step, total_steps=plan.total_steps, device=str(self.device), world_size=1,
            precision=self.precision)


def _training(state: TrainingState, config: PretrainConfig) -> bool:
    return state.epoch < config.epochs and not state.stopped_early


def _adamw(stack: StackedReplicas, config: PretrainConfig) -> torch.optim.AdamW:
    """pretrain's AdamW over the stacks: weight decay on the replicas' weight matrices (a
    stacked tensor has one more dimension than the replica's), not on biases or BatchNorm."""
    params = stack.module.trainable_parameters()
    return torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim - 1 >= 2], "weight_decay": config.weight_decay},
         {"params": [p for p in params if p.ndim - 1 < 2], "weight_decay": 0.0}], lr=config.lr)


def _ignore(event: dict) -> None:
    """The events of callers that want none."""
