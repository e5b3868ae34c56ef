"""Self-supervised pretraining: one readable loop (AdamW, warmup + cosine, early stopping).

    result = pretrain(X_train, X_val, layout, PretrainConfig(method="scarf", epochs=20),
                      on_event=print, should_stop=lambda: False, checkpoint_dir=Path("ckpt"))
    save_encoder("out/encoder", result.encoder, result.config)

Every knob is a field of `PretrainConfig` (core.learning.pretrain_config); what changes while
the run trains is its `TrainingState` (core.learning.pretrain_state), saved in every epoch's
checkpoint. Schedule, for step t of T = epochs * steps per epoch, W = round(warmup_fraction * T):
    lr(t) = lr (t + 1) / W                                            t < W
    lr(t) = min_lr + (lr - min_lr) (1 + cos(pi (t - W) / (T - W))) / 2,  min_lr = lr * min_lr_ratio
Weight decay applies to weight matrices only (ndim >= 2), not to biases or BatchNorm.

Data: a numpy matrix is moved to the device once and batched with one seeded permutation
per epoch (no DataLoader); a `core.learning.streaming.ChunkSource` is batched through a shuffle
buffer. Incomplete last batches are dropped (batch statistics need full batches, and DDP
needs equal shards). Validation loss uses a generator re-seeded for every evaluation, so
epochs are compared on the same views; the encoder of the best validation epoch is kept.
Early stopping after `patience` epochs without an improvement larger than `min_delta`
(patience <= 0 or no validation rows: never).

Determinism: the initialisation, the permutations and the views come from `seed` only
(global torch RNG is forked, never touched outside); on CPU the same seed gives the same
checkpoint bytes, and a run resumed from an epoch checkpoint ends with the same weights as
an uninterrupted one.

DDP: under torchrun (WORLD_SIZE > 1) the process group is initialised (nccl on CUDA, gloo
on CPU), BatchNorm layers are synchronised, the objective is wrapped in
DistributedDataParallel. Every rank draws the same permutation and the same views of the
global batch and keeps its slice of rows (global batch / world size); losses gather what
they need (core.learning.ssl.dist). Only rank 0 writes checkpoints and emits events.

Progress events (dicts) for on_event: {"stage": "pretrain", "message", "epoch", "epochs",
"step", "total_steps", "loss", "val_loss", "rows_per_second", "elapsed", "fraction"}, at
most every `EVENT_SECONDS` during an epoch and always at its end; {"stage": "warning",
"message"} when the encoder collapsed.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn

from core.errors import InputError
from core.learning.checkpoint import load_encoder, save_encoder
from core.learning.models import Encoder, EncoderConfig
from core.learning.pretrain_config import PretrainConfig
from core.learning.precision import autocast, resolve_precision
from core.learning.pretrain_state import TrainingState
from core.learning.ssl import dist, make_objective
from core.learning.ssl.collapse import collapse_report
from core.learning.ssl.views import FeatureLayout
from core.learning.streaming import ChunkSource, array_batches, stream_batches

EVENT_SECONDS = 0.5
VAL_SEED_OFFSET = 1_000_003
COLLAPSE_ROWS = 4096

__all__ = ["PretrainConfig", "PretrainResult", "pretrain", "save_encoder", "load_encoder",
           "resolve_device", "embed"]

Event = Callable[[dict], None]


@dataclass
class PretrainResult:
    encoder: Encoder                    # best validation epoch, on CPU, eval mode
    config: PretrainConfig
    history: list[dict[str, Any]]       # one entry per completed epoch
    best_epoch: int                     # 1-based; 0 if no epoch completed
    best_val_loss: float | None
    initial_val_loss: float | None      # before any step, same views as every epoch
    final_loss: float | None            # training loss of the last step (global batch)
    rows_per_second: float
    elapsed_seconds: float
    collapse: dict[str, Any]
    stopped_early: bool
    cancelled: bool
    epochs_completed: int
    steps: int
    total_steps: int
    device: str
    world_size: int
    precision: str = "fp32"             # what the steps ran in ("auto" resolved)

    @property
    def encoder_config(self) -> EncoderConfig:
        return self.encoder.config

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (everything but the encoder)."""
        out = {k: v for k, v in self.__dict__.items() if k != "encoder"}
        return {**out, "config": self.config.to_dict(),
                "encoder_config": self.encoder.config.to_dict()}


@dataclass(frozen=True)
class Batching:
    """How the training rows are cut into steps, on this process."""

    n_rows: int
    n_features: int
    batch: int                  # global batch: rows per step over all processes
    steps_per_epoch: int        # full batches only
    total_steps: int            # of the whole schedule, `epochs` epochs
    shard: slice | None         # this rank's rows of every view of a global batch (None: one process)


@dataclass
class Clock:
    """Wall time and rows of this call (a resumed run counts from its restart)."""

    started: float = field(default_factory=time.perf_counter)
    last_event: float = 0.0
    rows: int = 0               # training rows stepped through (global batches)
    train_seconds: float = 0.0  # inside epochs' steps: validation and checkpoints excluded

    def __post_init__(self) -> None:
        self.last_event = self.started

    def rows_per_second(self, seconds: float) -> float:
        return self.rows / max(seconds, 1e-9)


def resolve_device(name: str = "auto") -> torch.device:
    """"auto": cuda (cuda:LOCAL_RANK under torchrun) > mps > cpu."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@torch.no_grad()
def embed(encoder: nn.Module, X: torch.Tensor | np.ndarray, batch_size: int = 4096) -> torch.Tensor:
    """Encoder output in eval mode, (n, embed_dim), on X's device."""
    X = torch.as_tensor(X, dtype=torch.float32)
    was_training = encoder.training
    encoder.eval()
    try:
        with dist.local_only():
            return torch.cat([encoder(part) for part in X.split(batch_size)])
    finally:
        encoder.train(was_training)


def pretrain(X_train: np.ndarray | ChunkSource, X_val: np.ndarray | None,
             layout: FeatureLayout, config: PretrainConfig, *,
             on_event: Event | None = None,
             should_stop: Callable[[], bool] | None = None,
             checkpoint_dir: Path | str | None = None, resume: bool = False) -> PretrainResult:
    """Pretrain an encoder with `config.method` on X_train (see the module docstring).

    X_train: float32 (n, d) matrix, or a ChunkSource for data larger than memory.
    X_val: rows for validation loss, early stopping and the collapse check (or None).
    resume: continue from checkpoint_dir's latest epoch if there is one."""
    config.validate()
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    with (_process_group(device) as (rank, world),
          torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])):
        emit = on_event if (on_event is not None and rank == 0) else _ignore
        plan = _batching(X_train, layout, config, rank=rank, world=world)
        state = _fresh_state(config, layout=layout, n_features=plan.n_features, device=device, world=world)
        train_rows = X_train if isinstance(X_train, ChunkSource) else _on_device(X_train, "training", device)
        val_rows = _validation_rows(X_val, device)
        resumed = resume and checkpoint_dir is not None and state.restore(
            checkpoint_dir, config=config, n_features=plan.n_features)
        prepared = False  # whether the objective's before_epoch already ran for the coming epoch
        if not resumed:
            _before_epoch(state, train_rows)
            prepared = True
            if val_rows is not None:
                state.initial_val = _validation_loss(state.objective, val_rows, batch_size=plan.batch,
                                                     seed=config.seed, precision=precision)

        clock, cancelled = Clock(), False
        state.objective.train()
        while state.epoch < config.epochs and not state.stopped_early and not cancelled:
            epoch = state.epoch + 1
            if not prepared:
                _before_epoch(state, train_rows)
            prepared = False
            epoch_start = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            for xb in _epoch_batches(train_rows, epoch=state.epoch, batch_size=plan.batch,
                                     generator=state.generator, device=device):
                lr = _lr_at(state.step, plan.total_steps, config)
                loss = _step(state, xb, lr=lr, shard=plan.shard, total_steps=plan.total_steps, precision=precision)
                loss_sum += loss.detach()
                clock.rows += plan.batch
                cancelled = _agree(should_stop() if should_stop else False, world, device)
                now = time.perf_counter()
                if now - clock.last_event >= EVENT_SECONDS or cancelled:
                    clock.last_event = now
                    emit({"stage": "pretrain", "message": f"epoch {epoch}/{config.epochs}",
                          "epoch": epoch, "epochs": config.epochs, "step": state.step,
                          "total_steps": plan.total_steps, "loss": float(loss.detach()),
                          "rows_per_second": clock.rows_per_second(clock.train_seconds + now - epoch_start),
                          "elapsed": now - clock.started, "fraction": state.step / plan.total_steps})
                if cancelled:
                    break
            clock.train_seconds += time.perf_counter() - epoch_start
            state.last_loss = float(dist.mean_over_ranks(loss.detach()))
            if cancelled:
                break  # a partial epoch is not checkpointed; resume repeats it
            train_loss = float(dist.mean_over_ranks(loss_sum)) / max(plan.steps_per_epoch, 1)
            if not math.isfinite(train_loss):
                raise _diverged(config, train_loss, epoch)
            entry: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "val_loss": None,
                                     "lr": lr, "embedding_std": None}
            if val_rows is not None:
                entry["val_loss"] = _validation_loss(state.objective, val_rows, batch_size=plan.batch,
                                                     seed=config.seed, precision=precision)
                entry["embedding_std"] = collapse_report(
                    embed(state.objective.encoder, val_rows[:COLLAPSE_ROWS]))["embedding_std"]
                state.keep_if_best(entry["val_loss"], epoch=epoch, patience=config.patience,
                                   min_delta=config.min_delta)
            state.history.append(entry)
            state.epoch = epoch
            if checkpoint_dir is not None and rank == 0:
                state.save(checkpoint_dir, config=config, n_features=plan.n_features, total_steps=plan.total_steps)
            emit({"stage": "pretrain", "message": f"epoch {epoch}/{config.epochs} done",
                  "epoch": epoch, "epochs": config.epochs, "step": state.step,
                  "total_steps": plan.total_steps, "loss": train_loss, "val_loss": entry["val_loss"],
                  "rows_per_second": clock.rows_per_second(clock.train_seconds),
                  "elapsed": time.perf_counter() - clock.started, "fraction": state.step / plan.total_steps})

        encoder = _best_encoder(state)
        probe = val_rows[:COLLAPSE_ROWS].cpu() if val_rows is not None else _first_rows(X_train)
        collapse = _collapse_check(encoder, probe, method=config.method, emit=emit)
        return PretrainResult(
            encoder=encoder, config=config, history=state.history, best_epoch=state.best_epoch,
            best_val_loss=state.best_val, initial_val_loss=state.initial_val, final_loss=state.last_loss,
            rows_per_second=clock.rows_per_second(clock.train_seconds),
            elapsed_seconds=time.perf_counter() - clock.started, collapse=collapse,
            stopped_early=state.stopped_early, cancelled=cancelled, epochs_completed=state.epoch,
            steps=state.step, total_steps=plan.total_steps, device=str(device), world_size=world,
            precision=precision)


def _step(state: TrainingState, xb: torch.Tensor, *, lr: float, shard: slice | None,
          total_steps: int, precision: str = "fp32") -> torch.Tensor:
    """One optimizer step on the global batch xb; returns this rank's loss. The views are made
    in fp32 (elementwise, and their random draws must not depend on the precision); the
    objective's forward pass runs under `precision`'s autocast, the backward pass follows it."""
    for group in state.optimizer.param_groups:
        group["lr"] = lr
    views = state.objective.make_views(xb, state.generator)
    if shard is not None:  # every rank made the same views of the global batch; it keeps its rows
        views = tuple(v[shard] for v in views)
    with autocast(precision, xb.device):
        loss, _ = state.model(*views)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    state.objective.after_step(state.step, total_steps)
    state.step += 1
    return loss


def _before_epoch(state: TrainingState, rows: torch.Tensor | ChunkSource) -> None:
    """The objective's epoch-start hook (core.learning.ssl.base), given the training rows'
    embeddings on demand; the parameters it re-initialised start with fresh optimizer state."""
    def embed_rows() -> torch.Tensor:
        if isinstance(rows, ChunkSource):
            device = next(state.objective.encoder.parameters()).device
            return torch.cat([embed(state.objective.encoder, torch.as_tensor(np.asarray(chunk, np.float32)).to(device))
                              for chunk in rows.chunks(0)])
        return embed(state.objective.encoder, rows)

    for parameter in state.objective.before_epoch(embed_rows):
        state.optimizer.state.pop(parameter, None)


def _lr_at(step: int, total: int, config: PretrainConfig) -> float:
    warmup = round(config.warmup_fraction * total)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    min_lr = config.lr * config.min_lr_ratio
    progress = (step - warmup) / max(total - warmup, 1)
    return min_lr + (config.lr - min_lr) * (1 + math.cos(math.pi * min(progress, 1.0))) / 2


def _validation_loss(objective, X_val: torch.Tensor, *, batch_size: int, seed: int, precision: str = "fp32") -> float:
    """Mean loss over near-equal validation batches, eval mode, fixed views."""
    generator = torch.Generator(X_val.device).manual_seed(seed + VAL_SEED_OFFSET)
    objective.eval()
    total = torch.zeros((), device=X_val.device)
    with torch.no_grad(), dist.local_only(), autocast(precision, X_val.device):
        for part in torch.tensor_split(X_val, math.ceil(X_val.shape[0] / batch_size)):
            total += objective.loss(part, generator)[0].float() * part.shape[0]
    objective.train()
    return float(total) / X_val.shape[0]


def _fresh_state(config: PretrainConfig, *, layout: FeatureLayout, n_features: int, device: torch.device,
                 world: int) -> TrainingState:
    """A new run: the objective initialised from config.seed (torch's global RNG, forked by
    `pretrain`), AdamW with weight decay on weight matrices only, the generator of views."""
    torch.manual_seed(config.seed)
    objective = make_objective(config.method, config.encoder_config(n_features), layout,
                               **config.method_params).to(device)
    model: nn.Module = objective
    if world > 1:
        objective = dist.convert_sync_batchnorm(objective, device)
        model = nn.parallel.DistributedDataParallel(
            objective, device_ids=[device] if device.type == "cuda" else None)
    params = objective.trainable_parameters()
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=config.lr)
    generator = torch.Generator(device).manual_seed(config.seed)
    return TrainingState(objective=objective, model=model, optimizer=optimizer, generator=generator)


def _batching(X_train: np.ndarray | ChunkSource, layout: FeatureLayout, config: PretrainConfig, *,
              rank: int, world: int) -> Batching:
    n_rows, d = ((X_train.n_rows, X_train.n_features) if isinstance(X_train, ChunkSource)
                 else np.shape(X_train))
    if layout.n_features != d:
        raise InputError(f"feature layout has {layout.n_features} features, the data {d}",
                         "Build the layout from the encoder that produced the matrix")
    batch = min(int(config.batch_size), n_rows) // world * world
    if batch < 2 * world:
        raise InputError(f"{n_rows} training rows are too few for pretraining",
                         "Give at least 2 rows per process")
    local = batch // world
    steps_per_epoch = n_rows // batch
    return Batching(n_rows=n_rows, n_features=d, batch=batch, steps_per_epoch=steps_per_epoch,
                    total_steps=steps_per_epoch * config.epochs,
                    shard=slice(rank * local, (rank + 1) * local) if world > 1 else None)


def _epoch_batches(rows: torch.Tensor | ChunkSource, *, epoch: int, batch_size: int,
                   generator: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
    """One epoch's shuffled full batches: of the matrix on the device, or streamed from a
    chunk source (`epoch` counts from 0 and orders its chunks)."""
    if isinstance(rows, ChunkSource):
        return stream_batches(rows, epoch, batch_size, generator, device)
    return array_batches(rows, batch_size, generator)


def _on_device(X: np.ndarray, what: str, device: torch.device) -> torch.Tensor:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise InputError(f"the {what} matrix must be 2-d and finite (no NaN or inf)",
                         "Encode the table with TabularEncoder, which imputes missing values")
    return torch.as_tensor(X).to(device)


def _validation_rows(X_val: np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    if X_val is None or len(X_val) == 0:
        return None
    if len(X_val) < 2:
        raise InputError("validation needs at least 2 rows", "Give more validation rows")
    return _on_device(X_val, "validation", device)


def _diverged(config: PretrainConfig, train_loss: float, epoch: int) -> InputError:
    # The hint names what the user can change where they run: `equiscope pretrain`, `equiscope
    # audit` and the dashboard choose the method but have no learning-rate setting.
    return InputError(f"pretraining diverged: the {config.method} loss is {train_loss} in epoch {epoch}",
                      f"Choose another pretraining method (--method); the learning rate (PretrainConfig.lr, "
                      f"now {config.lr}) is set only from Python or the --config of "
                      "python -m core.learning.pretrain_ddp")


def _best_encoder(state: TrainingState) -> Encoder:
    """The encoder of the best validation epoch (the last one without validation), CPU, eval."""
    encoder = Encoder(state.objective.encoder.config)
    encoder.load_state_dict(state.best_encoder if state.best_encoder is not None
                            else {k: v.detach().cpu() for k, v in state.objective.encoder.state_dict().items()})
    return encoder.eval()


def _collapse_check(encoder: Encoder, rows: torch.Tensor, *, method: str, emit: Event) -> dict[str, Any]:
    collapse = collapse_report(embed(encoder, rows))
    if collapse["collapsed"]:
        message = (f"the {method} encoder collapsed: embedding std "
                   f"{collapse['embedding_std']:.2e} is under {collapse['threshold']} of the "
                   "spread-out value; its embeddings carry almost no information about the rows")
        emit({"stage": "warning", "message": message})
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return collapse


@contextmanager
def _process_group(device: torch.device) -> Iterator[tuple[int, int]]:
    """(rank, world size): joins torchrun's process group when WORLD_SIZE > 1 (nccl on CUDA,
    gloo on CPU) and leaves it at the end if it created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield 0, 1
        return
    created = False
    if not torch_dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        created = True
    try:
        yield torch_dist.get_rank(), torch_dist.get_world_size()
    finally:
        if created:
            torch_dist.destroy_process_group()


def _agree(flag: bool, world: int, device: torch.device) -> bool:
    """Every rank stops when any rank was asked to (a collective needs all ranks)."""
    if world == 1:
        return bool(flag)
    t = torch.tensor(float(flag), device=device)
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
    return bool(t.item())


def _first_rows(X_train: np.ndarray | ChunkSource) -> torch.Tensor:
    if isinstance(X_train, ChunkSource):
        return torch.as_tensor(np.asarray(next(iter(X_train.chunks(0)))[:COLLAPSE_ROWS], np.float32))
    return torch.as_tensor(np.asarray(X_train[:COLLAPSE_ROWS], np.float32))


def _ignore(event: dict) -> None:
    """The events of ranks other than 0, and of callers that want none."""
