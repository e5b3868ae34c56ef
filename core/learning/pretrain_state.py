"""The state of a pretraining run: what changes while it trains, and its epoch checkpoint.

`TrainingState` holds the objective (its encoder is what pretraining is for), the optimizer,
the generator of permutations and views, the encoder weights of the best epoch, and the
counters (epoch, step, history, best epoch and loss, epochs since the best, ...). `save`
writes one epoch checkpoint through core.learning.checkpoint (tensors in safetensors, the
counters in state.json); `restore` reads the latest back, with the global torch RNG state
(dropout), so a resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import InputError
from core.learning.checkpoint import (flatten_optimizer, load_training_state, prefixed, save_training_state,
                                      unflatten_optimizer, unprefixed)
from core.learning.pretrain_config import PretrainConfig
from core.learning.ssl.base import Objective

#: The JSON part of the state, as named in a checkpoint's state.json.
COUNTERS = ("epoch", "step", "history", "best_epoch", "best_val", "bad_epochs", "stopped_early", "last_loss",
            "initial_val")


@dataclass
class TrainingState:
    """Everything of a pretraining run that changes while it trains."""

    objective: Objective                    # the module trained (with SyncBatchNorm under DDP)
    model: nn.Module                        # `objective`, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    generator: torch.Generator              # permutations and views (the global RNG: dropout)
    best_encoder: dict[str, torch.Tensor] | None = None   # encoder weights of the best epoch, CPU
    epoch: int = 0                          # epochs completed
    step: int = 0                           # optimizer steps taken
    history: list[dict[str, Any]] = field(default_factory=list)   # one entry per epoch
    best_epoch: int = 0                     # 1-based; 0 before any validated epoch
    best_val: float | None = None           # validation loss of the best epoch
    bad_epochs: int = 0                     # epochs since the best one
    stopped_early: bool = False
    last_loss: float | None = None          # training loss of the last step, mean over ranks
    initial_val: float | None = None        # validation loss before the first step

    def keep_if_best(self, val_loss: float, *, epoch: int, patience: int, min_delta: float) -> None:
        """Early stopping's bookkeeping: an epoch is the new best when its validation loss is
        lower than the best by more than min_delta; `patience` epochs without one stop the run
        (patience <= 0: never)."""
        if self.best_val is None or val_loss < self.best_val - min_delta:
            self.best_val, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            self.best_encoder = {k: v.detach().cpu().clone() for k, v in self.objective.encoder.state_dict().items()}
        else:
            self.bad_epochs += 1
            self.stopped_early = 0 < patience <= self.bad_epochs

    def save(self, directory: Path, *, config: PretrainConfig, n_features: int, total_steps: int) -> None:
        """Write this state as the checkpoint of its last completed epoch."""
        optim_tensors, optim_meta = flatten_optimizer(self.optimizer.state_dict())
        tensors = {**prefixed("model", self.objective.state_dict()), **optim_tensors,
                   "rng.generator": self.generator.get_state(), "rng.torch": torch.get_rng_state()}
        if self.best_encoder is not None:
            tensors.update(prefixed("best", self.best_encoder))
        meta = {**{name: getattr(self, name) for name in COUNTERS}, "config": config.to_dict(),
                "optimizer": optim_meta, "n_features": n_features, "total_steps": total_steps}
        save_training_state(directory, tensors, meta)

    def restore(self, directory: Path, *, config: PretrainConfig, n_features: int) -> bool:
        """Continue from the latest checkpoint in `directory`: True if there was one."""
        loaded = load_training_state(directory)
        if loaded is None:
            return False
        tensors, meta = loaded
        _check_resumable(meta, config, n_features)
        self.objective.load_state_dict(unprefixed("model", tensors))
        self.optimizer.load_state_dict(unflatten_optimizer(tensors, meta["optimizer"]))
        self.best_encoder = unprefixed("best", tensors) or None
        self.generator.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.torch"])
        for name in COUNTERS:
            setattr(self, name, meta[name])
        return True


def _resume_key(config: PretrainConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the checkpoint (device may differ)."""
    return {k: v for k, v in config.to_dict().items() if k not in ("epochs", "device")}


def _check_resumable(meta: dict[str, Any], config: PretrainConfig, n_features: int) -> None:
    saved = PretrainConfig.from_dict(meta["config"])
    if _resume_key(saved) != _resume_key(config) or meta["n_features"] != n_features:
        raise InputError("the checkpoint was written by a run with other settings or data",
                         "Resume with the same configuration, or use a new checkpoint directory")
    if meta["config"]["epochs"] != config.epochs:
        raise InputError("the checkpoint's schedule was planned for "
                         f"{meta['config']['epochs']} epochs, not {config.epochs}",
                         "Resume with the same number of epochs")
