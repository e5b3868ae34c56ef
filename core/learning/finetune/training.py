"""The fine-tuning loop shared by every strategy and the supervised baseline.

Objective on the labelled training rows, z_i = head(dropout(encoder(x_i))), BCEWithLogits:
    L = mean_i -(pw * y_i * log sigmoid(z_i) + (1 - y_i) * log(1 - sigmoid(z_i)))
    pw = n_negative / n_positive with class_weight="balanced", else 1.
`linear` and `bn-stats` (frozen encoder): the embeddings are computed once and the head is
fitted to convergence by L-BFGS (core.learning.finetune.probe).
Every other strategy: AdamW on the trainable parameters (core.learning.finetune.strategies),
shuffled batches of nearly equal size <= batch_size, one validation loss per epoch (the
same L, eval mode: no dropout, BN running statistics). Early stopping keeps the weights
(and BN buffers) of the epoch with the lowest validation loss and stops after `patience`
epochs without improvement; in `gradual` the patience count restarts at every stage and
stopping waits for the last stage.
After training, temperature scaling is fitted on the validation rows (core.learning.calibration).
Large tables (issue 22): an epoch is at most `config.epoch_rows` rows of a running shuffled order,
the probe is fitted on at most that many, and early stopping reads at most `validation_rows`
validation rows, so fine-tuning's cost stops growing with the rows beyond those sizes.

n_trainable_params counts the parameters that were trainable in at least one epoch
(gradual: the blocks it reached); BN running statistics are buffers, not parameters.

Determinism: the head (and the supervised encoder) are initialised, and dropout drawn, from
torch's global generator seeded with `config.seed` inside `torch.random.fork_rng`, so the
caller's global RNG state is untouched; batches are shuffled by np.random.default_rng(seed).
Same seed, same data, same thread count -> identical weights and predictions on CPU.
Device and precision: `device` ("cpu", "cuda", ...) holds the rows, the encoder and the head
while they train (the returned classifier is on the CPU); with precision "bf16" the forward
passes run under bfloat16 autocast (core.learning.precision), parameters stay fp32.
Cancel: `should_stop()` is polled before every step; True raises core.errors.Cancelled
(a half-trained classifier is never returned).
Debiasing (core.learning.debias): an optional `hook` (TrainingHook) adds its trainable parameters
(AdamW, lr and weight decay of the head), a term to every batch's loss,
    L_batch = BCE + hook.loss(embedding, logits, rows),
and work after every step (pruning keeps its zeros). Early stopping still reads the validation
BCE alone: the hook's term measures the training rows' groups, and the epoch kept is the best
predictor among epochs that were all trained with it. The mini-batch strategies only: a hook
with `linear` or `bn-stats` (a frozen encoder and an L-BFGS head) is refused.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from core.data.split import bounded_rows
from core.errors import Cancelled, InputError
from core.learning.calibration import calibration_summary
from core.learning.debias.hook import TrainingHook
from core.learning.finetune.classifier import TrainedClassifier
from core.learning.finetune.config import FinetuneConfig
from core.learning.finetune.probe import fit_probe
from core.learning.precision import autocast
from core.learning.finetune.strategies import (HEAD_ONLY, batches, configure_encoder, parameter_groups,
                                               reestimate_bn_stats, unfrozen_blocks)
from core.learning.models import ClassifierHead, Encoder, EncoderConfig
from core.vocabulary import SUPERVISED, model_name

EVENT_EVERY_S = 0.5  # step events at most this often; one event per epoch always
EVAL_BATCH = 8192

Event = Callable[[dict], None]


def finetune(encoder: Encoder | None, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray,
             y_val: np.ndarray, config: FinetuneConfig, *, pretraining: str | None,
             encoder_config: EncoderConfig | None = None, on_event: Event | None = None,
             should_stop: Callable[[], bool] | None = None, device: str = "cpu",
             precision: str = "fp32", hook: TrainingHook | None = None,
             name: str | None = None) -> TrainedClassifier:
    """Fine-tune a copy of `encoder` with `config.strategy` (or, with strategy "supervised",
    train a fresh encoder of shape `encoder_config` from scratch) and return the calibrated
    classifier. `encoder` itself is never modified. `pretraining` names the SSL method that
    made the encoder ("scarf"; "random" for an untrained control) and is None for the
    supervised baseline. `should_stop()` is polled every step; when it returns True the run
    raises core.errors.Cancelled. `hook` adds a debiasing method to the loop (module
    docstring); `name` replaces the model's name ("scarf+full") for a variant."""
    config.validate()
    strategy = config.strategy
    if hook is not None and strategy in HEAD_ONLY:
        raise ValueError(f"strategy '{strategy}' fits its head by L-BFGS on a frozen encoder: a training hook "
                         "needs a mini-batch strategy (bn-affine, gradual, full, supervised)")
    X_train, y_train = _check_xy(X_train, y_train, "training")
    X_val, y_val = _check_xy(X_val, y_val, "validation")
    if X_val.shape[1] != X_train.shape[1]:
        raise InputError(f"Training rows have {X_train.shape[1]} features but validation rows {X_val.shape[1]}",
                         "Encode both with the same TabularEncoder")
    if len(np.unique(y_train)) < 2:
        raise InputError("The labelled training rows hold only one class",
                         "Use a larger label fraction, or data with both outcomes")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if strategy == SUPERVISED:
            if encoder is not None or pretraining is not None:
                raise ValueError("the supervised baseline starts from scratch: pass encoder=None, pretraining=None "
                                 "and the shape as encoder_config")
            encoder = Encoder(encoder_config or EncoderConfig(input_dim=X_train.shape[1]))
            name = name or SUPERVISED
        else:
            if encoder is None or not pretraining:
                raise ValueError(f"strategy '{strategy}' needs a pretrained encoder and the name of its pretraining")
            encoder = copy.deepcopy(encoder).cpu()
            name = name or model_name(pretraining, strategy)
        if encoder.config.input_dim != X_train.shape[1]:
            raise InputError(f"The encoder expects {encoder.config.input_dim} features but the rows have "
                             f"{X_train.shape[1]}", "Fine-tune with the study the encoder was pretrained on")
        if config.encoder_dropout > 0:  # fine-tuning only (small tables: FinetuneConfig.encoder_dropout)
            for block in encoder.blocks:
                block.drop = nn.Dropout(config.encoder_dropout)
        head = ClassifierHead(encoder.embed_dim)
        return _Run(name, pretraining, encoder, head, config, on_event, should_stop,
                    torch.device(device), precision, hook or TrainingHook()).fit(X_train, y_train, X_val, y_val)


def train_supervised(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                     config: FinetuneConfig, encoder_config: EncoderConfig, *, on_event: Event | None = None,
                     should_stop: Callable[[], bool] | None = None, device: str = "cpu",
                     precision: str = "fp32") -> TrainedClassifier:
    """The supervised baseline: `finetune` with strategy "supervised" and a fresh encoder."""
    config = FinetuneConfig.from_dict({**config.to_dict(), "strategy": SUPERVISED})
    return finetune(None, X_train, y_train, X_val, y_val, config, pretraining=None,
                    encoder_config=encoder_config, on_event=on_event, should_stop=should_stop, device=device,
                    precision=precision)


def count_parameters(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


class _Run:
    """One training run; holds the state the loop shares between epochs."""

    def __init__(self, name: str, pretraining: str | None, encoder: Encoder, head: ClassifierHead,
                 config: FinetuneConfig, on_event: Event | None, should_stop: Callable[[], bool] | None,
                 device: torch.device, precision: str, hook: TrainingHook) -> None:
        self.device, self.precision, self.hook = device, precision, hook
        self.name, self.pretraining = name, pretraining
        self.encoder, self.head = encoder.to(device), head.to(device)
        self.config, self.on_event, self.should_stop = config, on_event, should_stop
        self.strategy = config.strategy
        self.dropout = nn.Dropout(config.dropout)
        self.rng = np.random.default_rng(config.seed)
        self.depth = len(encoder.blocks)
        self._last_event = 0.0

    def fit(self, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray) -> TrainedClassifier:
        cfg, encoder, head = self.config, self.encoder, self.head
        started = time.perf_counter()
        x_tr, x_va = torch.from_numpy(X_train).to(self.device), torch.from_numpy(X_val).to(self.device)
        y_tr = torch.from_numpy(y_train.astype(np.float32)).to(self.device)
        y_va = torch.from_numpy(y_val.astype(np.float32)).to(self.device)
        # Early stopping (and the probe's choice of l2) read at most validation_rows rows.
        stopping_rows = torch.from_numpy(bounded_rows(len(X_val), cfg.validation_rows, cfg.seed)).to(self.device)
        x_stop, y_stop = x_va[stopping_rows], y_va[stopping_rows]
        n_pos = float(y_train.sum())
        pos_weight = (len(y_train) - n_pos) / n_pos if cfg.class_weight == "balanced" else 1.0
        extra: dict = {"n_train": len(X_train), "n_val": len(X_val), "n_val_stopping": len(stopping_rows),
                       "pos_weight": pos_weight}
        if self.strategy in HEAD_ONLY:
            if self.strategy == "bn-stats":
                extra["bn_stat_batches"] = reestimate_bn_stats(encoder, x_tr, cfg.batch_size, self.rng)
            encoder.eval()
            for parameter in encoder.parameters():
                parameter.requires_grad_(False)
            # The encoder is a fixed function now: embed once, fit the head on the embeddings.
            # Full-batch L-BFGS costs (iterations x rows): it is fitted on at most epoch_rows rows.
            probe_rows = torch.from_numpy(bounded_rows(len(X_train), cfg.epoch_rows, cfg.seed)).to(self.device)
            h_tr, h_va = self._embed(x_tr[probe_rows]).cpu(), self._embed(x_stop).cpu()
            self._check_cancel()
            self._emit({"message": f"{self.name}: fitting the logistic head", "fraction": 0.0})
            head.cpu()  # the probe solves in float64 on the CPU (core.learning.finetune.probe)
            history, extra["probe"] = fit_probe(head, h_tr, y_tr[probe_rows].cpu(), h_va, y_stop.cpu(), pos_weight,
                                                cfg.probe_l2)
            extra["probe"]["n_train"] = len(probe_rows)
            n_trainable = count_parameters(head)
        else:
            loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, dtype=torch.float32, device=self.device))
            history, n_trainable, epochs = self._train(x_tr, y_tr, x_stop, y_stop, loss_fn)
            extra |= epochs
            self.hook.finish(encoder)
            if self.hook.summary():
                extra["debias"] = self.hook.summary()
        encoder, head = encoder.eval().cpu(), head.eval().cpu()
        for parameter in encoder.parameters():
            parameter.requires_grad_(False)
        extra["seconds"] = time.perf_counter() - started
        model = TrainedClassifier(name=self.name, pretraining=self.pretraining, strategy=self.strategy,
                                  encoder=encoder, head=head, n_trainable_params=n_trainable,
                                  history=history, config=cfg.to_dict(), extra=extra)
        if cfg.calibrate:
            model.calibration = calibration_summary(model.logits(X_val), y_val)
            model.temperature = model.calibration["temperature"]
        self._emit({"fraction": 1.0, "message": f"{self.name}: done"})
        return model

    def _train(self, x_tr: torch.Tensor, y_tr: torch.Tensor, x_va: torch.Tensor, y_va: torch.Tensor,
               loss_fn: nn.Module) -> tuple[list[dict], int, dict]:
        """The mini-batch AdamW loop with early stopping. Returns (history, number of parameters
        that were trainable in at least one epoch, {"best_epoch", "epochs_run"})."""
        cfg, encoder, head = self.config, self.encoder, self.head
        groups = parameter_groups(encoder, head, self.strategy, cfg.lr, cfg.encoder_lr_scale, cfg.weight_decay)
        hook_parameters = self.hook.attach(encoder, head, self.device)
        if hook_parameters:  # an adversary's head learns at the head's pace
            groups.append({"params": hook_parameters, "lr": cfg.lr, "weight_decay": cfg.weight_decay})
        optimizer = torch.optim.AdamW(groups)
        order = EpochOrder(len(x_tr), cfg.epoch_rows, self.rng)
        steps_per_epoch = len(batches(np.arange(order.size), cfg.batch_size))
        total_steps = cfg.epochs * steps_per_epoch
        trained: dict[int, int] = {id(p): p.numel() for p in head.parameters()}
        history: list[dict] = []
        best_loss, best_state, best_epoch, bad_epochs, stage = math.inf, None, 0, 0, -1
        for epoch in range(cfg.epochs):
            n_unfrozen = unfrozen_blocks(self.strategy, epoch, self.depth, cfg.stage_epochs)
            configure_encoder(encoder, self.strategy, n_unfrozen)
            trained |= {id(p): p.numel() for p in encoder.parameters() if p.requires_grad}
            if n_unfrozen != stage:  # a new gradual stage gets its own patience
                stage, bad_epochs = n_unfrozen, 0
            head.train()
            self.dropout.train()
            epoch_start, loss_sum, hook_sum, rows_seen = time.perf_counter(), 0.0, 0.0, 0
            for step, rows in enumerate(batches(order.next_epoch(), cfg.batch_size)):
                self._check_cancel()
                index = torch.from_numpy(rows).to(self.device)
                with autocast(self.precision, self.device):
                    embedding = encoder(x_tr[index])
                    logits = head(self.dropout(embedding))
                loss = loss_fn(logits.float(), y_tr[index])
                added = self.hook.loss(embedding.float(), logits.float(), index)
                if added is not None:
                    loss = loss + added
                    hook_sum += added.item() * len(rows)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                self.hook.after_step()
                loss_sum += loss.item() * len(rows)
                rows_seen += len(rows)
                self._emit_step(epoch, step, steps_per_epoch, total_steps, loss.item(), rows_seen, epoch_start)
            val_loss = self._loss(x_va, y_va, loss_fn)
            seconds = time.perf_counter() - epoch_start
            record = {"epoch": epoch + 1, "train_loss": loss_sum / rows_seen, "val_loss": val_loss,
                      "seconds": seconds, "rows_per_second": rows_seen / seconds if seconds > 0 else None}
            if self.strategy == "gradual":
                record["unfrozen_blocks"] = list(range(self.depth - n_unfrozen, self.depth))
            if hook_sum:
                record["hook_loss"] = hook_sum / rows_seen  # the hook's share of train_loss
            history.append(record)
            if val_loss < best_loss - cfg.min_delta:
                best_loss, best_epoch, bad_epochs = val_loss, epoch + 1, 0
                best_state = copy.deepcopy((encoder.state_dict(), head.state_dict()))
            else:
                bad_epochs += 1
            self._emit({"epoch": epoch + 1, "step": steps_per_epoch, "total_steps": steps_per_epoch,
                        "loss": record["train_loss"], "val_loss": val_loss,
                        "rows_per_second": record["rows_per_second"], "fraction": (epoch + 1) / cfg.epochs,
                        "message": f"{self.name}: epoch {epoch + 1}/{cfg.epochs}"})
            last_stage = self.strategy != "gradual" or n_unfrozen == self.depth
            if last_stage and bad_epochs >= cfg.patience:
                break
        if best_state is not None:
            encoder.load_state_dict(best_state[0])
            head.load_state_dict(best_state[1])
        return history, sum(trained.values()), {"best_epoch": best_epoch, "epochs_run": len(history)}

    def _check_cancel(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(f"fine-tuning of {self.name} cancelled")

    def _loss(self, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module) -> float:
        """The training objective on (x, y) in eval mode (no dropout, BN running statistics)."""
        self.head.eval()
        with autocast(self.precision, self.device):
            logits = _forward(self.head, _forward(self.encoder, x))
        return float(loss_fn(logits.float(), y))

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen encoder's embeddings of x (eval mode), in fp32 for the probe."""
        with autocast(self.precision, self.device):
            return _forward(self.encoder, x).float()

    def _emit_step(self, epoch: int, step: int, steps_per_epoch: int, total_steps: int, loss: float,
                   rows_seen: int, epoch_start: float) -> None:
        if self.on_event is None or time.perf_counter() - self._last_event < EVENT_EVERY_S:
            return
        elapsed = time.perf_counter() - epoch_start
        self._emit({"epoch": epoch + 1, "step": step + 1, "total_steps": steps_per_epoch, "loss": loss,
                    "rows_per_second": rows_seen / elapsed if elapsed > 0 else None,
                    "fraction": (epoch * steps_per_epoch + step + 1) / total_steps})

    def _emit(self, event: dict) -> None:
        if self.on_event is None:
            return
        self._last_event = time.perf_counter()
        self.on_event({"stage": "finetune", "model": self.name, "epochs": self.config.epochs, **event})


class EpochOrder:
    """The rows of each epoch: a fresh permutation of all n rows when n <= epoch_rows (the
    classic epoch), else the next epoch_rows positions of a running shuffled order, reshuffled
    when used up, so every row is seen once per ceil(n / epoch_rows) epochs."""

    def __init__(self, n: int, epoch_rows: int, rng: np.random.Generator) -> None:
        self.n, self.size, self.rng = n, min(n, epoch_rows), rng
        self.pending = np.empty(0, dtype=np.int64)

    def next_epoch(self) -> np.ndarray:
        if self.size == self.n:
            return self.rng.permutation(self.n)
        if len(self.pending) < self.size:
            self.pending = np.concatenate([self.pending, self.rng.permutation(self.n)])
        rows, self.pending = self.pending[:self.size], self.pending[self.size:]
        return rows


def _forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x) in eval mode, batched, without gradients; restores every submodule's own mode
    (in `gradual` some blocks train while others stay in eval mode)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    with torch.no_grad():
        out = torch.cat([module(x[i:i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])
    for m, training in modes:
        m.training = training
    return out


def _check_xy(X: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y).ravel()
    if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
        raise InputError(f"The {what} rows must be a non-empty (n, d) matrix with one label per row, got "
                         f"{X.shape} and {y.shape}", "Pass study.X[rows] and study.labels(rows)")
    if not np.all(np.isfinite(X)):
        raise InputError(f"The {what} rows contain NaN or infinite values", "Encode them with the TabularEncoder")
    if not np.isin(y, (0, 1)).all():
        raise InputError(f"The {what} labels must be 0 or 1", "Pass study.labels(rows)")
    return X, y.astype(np.int64)
