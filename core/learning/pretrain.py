"""Self-supervised pretraining: one readable loop (AdamW, warmup + cosine, early stopping).

    result = pretrain(X_train, X_val, layout, PretrainConfig(method="scarf", epochs=20),
                      on_event=print, should_stop=lambda: False, checkpoint_dir=Path("ckpt"))
    save_encoder("out/encoder", result.encoder, result.config)

Every knob is a field of `PretrainConfig`. Schedule, for step t of T = epochs * steps per
epoch, W = round(warmup_fraction * T):
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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn

from core.learning.checkpoint import (flatten_optimizer, load_encoder, load_training_state, prefixed,
                             save_encoder, save_training_state, unflatten_optimizer, unprefixed)
from core.errors import InputError
from core.learning.models import Encoder, EncoderConfig
from core.learning.ssl import dist, get_method, make_objective
from core.learning.ssl.collapse import collapse_report
from core.learning.ssl.views import FeatureLayout
from core.learning.streaming import ChunkSource, array_batches, stream_batches

EVENT_SECONDS = 0.5
VAL_SEED_OFFSET = 1_000_003
COLLAPSE_ROWS = 4096

__all__ = ["PretrainConfig", "PretrainResult", "pretrain", "save_encoder", "load_encoder",
           "resolve_device", "embed"]


@dataclass
class PretrainConfig:
    """Everything that defines a pretraining run (JSON-able via to_dict / from_dict)."""

    method: str = "scarf"
    method_params: dict[str, Any] = field(default_factory=dict)
    encoder: dict[str, Any] = field(default_factory=dict)  # EncoderConfig fields but input_dim
    epochs: int = 50
    batch_size: int = 256        # global batch (split across ranks under DDP)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.01
    patience: int = 5
    min_delta: float = 0.0
    seed: int = 0
    device: str = "auto"         # "auto" (cuda > mps > cpu), or a torch device string

    def validate(self) -> None:
        get_method(self.method)
        if int(self.epochs) < 1:
            raise InputError(f"epochs must be at least 1, got {self.epochs}", "Use --epochs 1 or more")
        if int(self.batch_size) < 2:
            raise InputError(f"batch size must be at least 2, got {self.batch_size}",
                             "Batch statistics need two rows or more")
        if not self.lr > 0:
            raise InputError(f"learning rate must be positive, got {self.lr}", "Use e.g. 1e-3")
        if not 0 <= self.warmup_fraction < 1:
            raise InputError(f"warmup fraction must be in [0, 1), got {self.warmup_fraction}",
                             "Use e.g. 0.05")
        if "input_dim" in self.encoder:
            raise InputError("the encoder's input_dim comes from the data",
                             "Leave input_dim out of the encoder settings")
        self.encoder_config(1)
        known = get_method(self.method).defaults
        unknown = sorted(set(self.method_params) - set(known))
        if unknown:
            raise InputError(f"unknown parameter(s) {unknown} for method '{self.method}'",
                             f"Parameters of '{self.method}' are: {sorted(known)}")

    def encoder_config(self, input_dim: int) -> EncoderConfig:
        try:
            return EncoderConfig(input_dim=input_dim, **self.encoder)
        except (TypeError, ValueError) as error:
            raise InputError(f"bad encoder settings {self.encoder}: {error}",
                             "Use hidden_dim, depth, embed_dim, dropout, residual") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        return cls(**data)


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

    @property
    def encoder_config(self) -> EncoderConfig:
        return self.encoder.config

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (everything but the encoder)."""
        out = {k: v for k, v in self.__dict__.items() if k != "encoder"}
        return {**out, "config": self.config.to_dict(),
                "encoder_config": self.encoder.config.to_dict()}


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


def _lr_at(step: int, total: int, config: PretrainConfig) -> float:
    warmup = round(config.warmup_fraction * total)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    min_lr = config.lr * config.min_lr_ratio
    progress = (step - warmup) / max(total - warmup, 1)
    return min_lr + (config.lr - min_lr) * (1 + math.cos(math.pi * min(progress, 1.0))) / 2


def _validation_loss(objective, X_val: torch.Tensor, batch_size: int, seed: int) -> float:
    """Mean loss over near-equal validation batches, eval mode, fixed views."""
    generator = torch.Generator(X_val.device).manual_seed(seed + VAL_SEED_OFFSET)
    objective.eval()
    total = torch.zeros((), device=X_val.device)
    with torch.no_grad(), dist.local_only():
        for part in torch.tensor_split(X_val, math.ceil(X_val.shape[0] / batch_size)):
            total += objective.loss(part, generator)[0] * part.shape[0]
    objective.train()
    return float(total) / X_val.shape[0]


def _init_distributed(device: torch.device) -> tuple[int, int, bool]:
    """(rank, world_size, created) — joins torchrun's process group when WORLD_SIZE > 1."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, False
    created = False
    if not torch_dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        created = True
    return torch_dist.get_rank(), torch_dist.get_world_size(), created


def pretrain(X_train: np.ndarray | ChunkSource, X_val: np.ndarray | None,
             layout: FeatureLayout, config: PretrainConfig, *,
             on_event: Callable[[dict], None] | None = None,
             should_stop: Callable[[], bool] | None = None,
             checkpoint_dir: Path | str | None = None, resume: bool = False) -> PretrainResult:
    """Pretrain an encoder with `config.method` on X_train (see the module docstring).

    X_train: float32 (n, d) matrix, or a ChunkSource for data larger than memory.
    X_val: rows for validation loss, early stopping and the collapse check (or None).
    resume: continue from checkpoint_dir's latest epoch if there is one."""
    config.validate()
    device = resolve_device(config.device)
    rank, world, created_group = _init_distributed(device)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return _run(X_train, X_val, layout, config, device, rank, world, on_event,
                        should_stop, Path(checkpoint_dir) if checkpoint_dir else None, resume)
    finally:
        if created_group:
            torch_dist.destroy_process_group()


def _run(X_train, X_val, layout, config, device, rank, world, on_event, should_stop,
         checkpoint_dir, resume) -> PretrainResult:
    emit = on_event if (on_event is not None and rank == 0) else (lambda event: None)
    streaming = isinstance(X_train, ChunkSource)
    n_rows, d = ((X_train.n_rows, X_train.n_features) if streaming else np.shape(X_train))
    if layout.n_features != d:
        raise InputError(f"feature layout has {layout.n_features} features, the data {d}",
                         "Build the layout from the encoder that produced the matrix")
    batch = min(int(config.batch_size), n_rows) // world * world   # global batch
    if batch < 2 * world:
        raise InputError(f"{n_rows} training rows are too few for pretraining",
                         "Give at least 2 rows per process")
    local = batch // world
    steps_per_epoch = n_rows // batch
    total_steps = steps_per_epoch * config.epochs

    # -- model, optimizer, data on the device ---------------------------------------------
    torch.manual_seed(config.seed)  # global RNG is forked by the caller: init + dropout only
    objective = make_objective(config.method, config.encoder_config(d), layout,
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
    X_train_t = None if streaming else torch.as_tensor(_finite(X_train, "training")).to(device)
    X_val_t = None
    if X_val is not None and len(X_val) > 0:
        if len(X_val) < 2:
            raise InputError("validation needs at least 2 rows", "Give more validation rows")
        X_val_t = torch.as_tensor(_finite(X_val, "validation")).to(device)

    # -- state, fresh or from the checkpoint ------------------------------------------------
    s: dict[str, Any] = {"epoch": 0, "step": 0, "history": [], "best_epoch": 0,
                         "best_val": None, "bad_epochs": 0, "stopped_early": False,
                         "last_loss": None, "initial_val": None}
    best_state: dict[str, torch.Tensor] | None = None
    loaded = load_training_state(checkpoint_dir) if (resume and checkpoint_dir) else None
    if loaded is not None:
        tensors, meta = loaded
        _check_resumable(meta, config, d)
        objective.load_state_dict(unprefixed("model", tensors))
        optimizer.load_state_dict(unflatten_optimizer(tensors, meta["optimizer"]))
        best_state = unprefixed("best", tensors) or None
        generator.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.torch"])
        s.update({k: meta[k] for k in s})
    elif X_val_t is not None:
        s["initial_val"] = _validation_loss(objective, X_val_t, batch, config.seed)

    # -- the loop -------------------------------------------------------------------------
    rows_done, train_seconds, cancelled = 0, 0.0, False
    start_time = time.perf_counter()
    last_event = start_time
    objective.train()
    while s["epoch"] < config.epochs and not s["stopped_early"] and not cancelled:
        epoch = s["epoch"] + 1
        loss_sum = torch.zeros((), device=device)
        epoch_start = time.perf_counter()
        batches = (stream_batches(X_train, s["epoch"], batch, generator, device) if streaming
                   else array_batches(X_train_t, batch, generator))
        for xb in batches:
            lr = _lr_at(s["step"], total_steps, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            views = objective.make_views(xb, generator)
            if world > 1:
                views = tuple(v[rank * local:(rank + 1) * local] for v in views)
            loss, _ = model(*views)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            objective.after_step(s["step"], total_steps)
            s["step"] += 1
            loss_sum += loss.detach()
            rows_done += batch
            cancelled = _agree(should_stop() if should_stop else False, world, device)
            now = time.perf_counter()
            if now - last_event >= EVENT_SECONDS or cancelled:
                last_event = now
                elapsed_train = train_seconds + now - epoch_start
                emit({"stage": "pretrain", "message": f"epoch {epoch}/{config.epochs}",
                      "epoch": epoch, "epochs": config.epochs, "step": s["step"],
                      "total_steps": total_steps, "loss": float(loss.detach()),
                      "rows_per_second": rows_done / max(elapsed_train, 1e-9),
                      "elapsed": now - start_time, "fraction": s["step"] / total_steps})
            if cancelled:
                break
        train_seconds += time.perf_counter() - epoch_start
        s["last_loss"] = float(dist.mean_over_ranks(loss.detach()))
        if cancelled:
            break  # a partial epoch is not checkpointed; resume repeats it
        train_loss = float(dist.mean_over_ranks(loss_sum)) / max(steps_per_epoch, 1)
        if not math.isfinite(train_loss):
            raise InputError(f"pretraining diverged: the {config.method} loss is {train_loss} "
                             f"in epoch {epoch}", f"Lower the learning rate (now {config.lr})")
        entry: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "val_loss": None,
                                 "lr": lr, "embedding_std": None}
        if X_val_t is not None:
            entry["val_loss"] = _validation_loss(objective, X_val_t, batch, config.seed)
            entry["embedding_std"] = collapse_report(
                embed(objective.encoder, X_val_t[:COLLAPSE_ROWS]))["embedding_std"]
            improved = s["best_val"] is None or entry["val_loss"] < s["best_val"] - config.min_delta
            if improved:
                s["best_val"], s["best_epoch"], s["bad_epochs"] = entry["val_loss"], epoch, 0
                best_state = {k: v.detach().cpu().clone()
                              for k, v in objective.encoder.state_dict().items()}
            else:
                s["bad_epochs"] += 1
                s["stopped_early"] = 0 < config.patience <= s["bad_epochs"]
        s["history"].append(entry)
        s["epoch"] = epoch
        if checkpoint_dir is not None and rank == 0:
            _save_checkpoint(checkpoint_dir, objective, optimizer, best_state, generator, s,
                             config, d, total_steps)
        emit({"stage": "pretrain", "message": f"epoch {epoch}/{config.epochs} done",
              "epoch": epoch, "epochs": config.epochs, "step": s["step"],
              "total_steps": total_steps, "loss": train_loss, "val_loss": entry["val_loss"],
              "rows_per_second": rows_done / max(train_seconds, 1e-9),
              "elapsed": time.perf_counter() - start_time, "fraction": s["step"] / total_steps})

    # -- result: best encoder, collapse check ---------------------------------------------
    encoder = Encoder(objective.encoder.config)
    encoder.load_state_dict(best_state if best_state is not None
                            else {k: v.detach().cpu() for k, v in objective.encoder.state_dict().items()})
    encoder.eval()
    probe = (X_val_t[:COLLAPSE_ROWS].cpu() if X_val_t is not None else _first_rows(X_train))
    collapse = collapse_report(embed(encoder, probe))
    if collapse["collapsed"]:
        message = (f"the {config.method} encoder collapsed: embedding std "
                   f"{collapse['embedding_std']:.2e} is under {collapse['threshold']} of the "
                   "spread-out value; its embeddings carry almost no information about the rows")
        emit({"stage": "warning", "message": message})
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    elapsed = time.perf_counter() - start_time
    return PretrainResult(
        encoder=encoder, config=config, history=s["history"], best_epoch=s["best_epoch"],
        best_val_loss=s["best_val"], initial_val_loss=s["initial_val"],
        final_loss=s["last_loss"], rows_per_second=rows_done / max(train_seconds, 1e-9),
        elapsed_seconds=elapsed, collapse=collapse, stopped_early=s["stopped_early"],
        cancelled=cancelled, epochs_completed=s["epoch"], steps=s["step"],
        total_steps=total_steps, device=str(device), world_size=world)


def _finite(X: np.ndarray, what: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise InputError(f"the {what} matrix must be 2-d and finite (no NaN or inf)",
                         "Encode the table with TabularEncoder, which imputes missing values")
    return X


def _agree(flag: bool, world: int, device: torch.device) -> bool:
    """Every rank stops when any rank was asked to (a collective needs all ranks)."""
    if world == 1:
        return bool(flag)
    t = torch.tensor(float(flag), device=device)
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
    return bool(t.item())


def _first_rows(X_train) -> torch.Tensor:
    if isinstance(X_train, ChunkSource):
        return torch.as_tensor(np.asarray(next(iter(X_train.chunks(0)))[:COLLAPSE_ROWS], np.float32))
    return torch.as_tensor(np.asarray(X_train[:COLLAPSE_ROWS], np.float32))


def _resume_key(config: PretrainConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the checkpoint (device may differ)."""
    return {k: v for k, v in config.to_dict().items() if k not in ("epochs", "device")}


def _check_resumable(meta: dict[str, Any], config: PretrainConfig, d: int) -> None:
    saved = PretrainConfig.from_dict(meta["config"])
    if _resume_key(saved) != _resume_key(config) or meta["n_features"] != d:
        raise InputError("the checkpoint was written by a run with other settings or data",
                         "Resume with the same configuration, or use a new checkpoint directory")
    if meta["config"]["epochs"] != config.epochs:
        raise InputError("the checkpoint's schedule was planned for "
                         f"{meta['config']['epochs']} epochs, not {config.epochs}",
                         "Resume with the same number of epochs")


def _save_checkpoint(directory, objective, optimizer, best_state, generator, s, config, d,
                     total_steps) -> None:
    optim_tensors, optim_meta = flatten_optimizer(optimizer.state_dict())
    tensors = {**prefixed("model", objective.state_dict()), **optim_tensors,
               "rng.generator": generator.get_state(), "rng.torch": torch.get_rng_state()}
    if best_state is not None:
        tensors.update(prefixed("best", best_state))
    meta = {**s, "config": config.to_dict(), "optimizer": optim_meta, "n_features": d,
            "total_steps": total_steps}
    save_training_state(directory, tensors, meta)

