"""`finetune_replicates`: the R replicates of one fine-tuning recipe trained as one batched model.

    models = finetune_replicates([result.encoder for result in pretrained], [X[rows] for rows in labelled],
                                 [y[rows] for rows in labelled], X_val, y_val,
                                 [replace(config, seed=s) for s in seeds], pretraining="scarf")
    baselines = train_supervised_replicates([X[rows] ...], [y[rows] ...], X_val, y_val, configs, encoder_config)
    # models[r] is what finetune(encoders[r], X_train[r], y_train[r], X_val, y_val, configs[r], ...)
    # returns (the same TrainedClassifier, up to rounding)

The arguments are `finetune`'s, with one encoder, one labelled training set and one config per
replicate (configs equal but for `seed`); the validation rows are shared, as in the pipeline.
One step for all replicates, with the (R, ...) stacks of core.learning.batched.stacking:
    for every r:  rows_r = replicate r's next batch (np.random.default_rng(seed_r) permutations)
    logits = vmap(head(encoder(x)))(stacked parameters, stacked buffers, x[r][rows_r])
    losses = vmap(BCEWithLogits with pos_weight_r)(logits, y_r)          (R,)
    sum(losses).backward(); AdamW.step()    (elementwise: R separate AdamWs)
Per replicate, as `finetune` does it: head (and supervised encoder) initialised from its seed,
its batches, AdamW moments, BatchNorm running statistics, the strategy's trainable parts and
modes per epoch (core.learning.finetune.strategies, applied to the stacks), validation loss,
early stopping with the best epoch's weights, calibration. A stopped replicate's row keeps
stepping with the others, but nothing after its stop is kept.

Which replicates are batched together: those with the same number of labelled rows (their
batches then have equal sizes; the pipeline's stratified redraws have equal sizes). A size that
only one replicate has is trained alone by `finetune`. Also trained one after another by
`finetune` itself: `linear` and `bn-stats` (a frozen encoder and an L-BFGS probe: no mini-batch
loop to batch), and runs with dropout (it draws from the global RNG inside the forward pass,
which a vmapped forward cannot split into the solo runs' streams).
Cancel: `should_stop()` is polled before every step and raises core.errors.Cancelled, as in
`finetune`. Events: finetune's, with {"replicate": r, "replicates": R}.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import Cancelled, InputError
from core.learning.batched.replica_set import Event, check_replicate_configs, replicate_events
from core.learning.batched.stacking import StackedReplicas
from core.learning.calibration import calibration_summary
from core.learning.finetune.classifier import TrainedClassifier
from core.learning.finetune.config import FinetuneConfig
from core.learning.finetune.strategies import HEAD_ONLY, batches, configure_encoder, parameter_groups, unfrozen_blocks
from core.data.split import bounded_rows
from core.learning.finetune.training import EVENT_EVERY_S, EpochOrder, _check_xy, _forward, finetune
from core.learning.models import ClassifierHead, Encoder, EncoderConfig
from core.learning.precision import autocast
from core.vocabulary import SUPERVISED, model_name


def finetune_replicates(encoders: Sequence[Encoder] | None, X_train: Sequence[np.ndarray],
                        y_train: Sequence[np.ndarray], X_val: np.ndarray, y_val: np.ndarray,
                        configs: Sequence[FinetuneConfig], *, pretraining: str | None,
                        encoder_config: EncoderConfig | None = None, on_event: Event | None = None,
                        should_stop: Callable[[], bool] | None = None, device: str = "cpu",
                        precision: str = "fp32") -> list[TrainedClassifier]:
    """Fine-tune replicate r's copy of encoders[r] on (X_train[r], y_train[r]) with configs[r]
    (strategy "supervised": a fresh encoder of shape `encoder_config`, encoders None), batched
    where it can be (module docstring). Returns one TrainedClassifier per replicate, in order."""
    configs = list(configs)
    check_replicate_configs(configs, "fine-tuning")
    n = len(configs)
    encoders = [None] * n if encoders is None else list(encoders)
    if not len(encoders) == len(X_train) == len(y_train) == n:
        raise ValueError(f"one encoder, training set and config per replicate: got {len(encoders)}, "
                         f"{len(X_train)}, {len(y_train)} and {n}")
    models: list[TrainedClassifier | None] = [None] * n
    for members in _groups(X_train, configs[0], encoders, encoder_config):
        if len(members) > 1:
            batch = _Batched(members, n, [encoders[r] for r in members], [X_train[r] for r in members],
                             [y_train[r] for r in members], X_val, y_val, [configs[r] for r in members],
                             pretraining, encoder_config, on_event, should_stop, torch.device(device), precision)
            for r, model in zip(members, batch.fit()):
                models[r] = model
            continue
        r = members[0]
        models[r] = finetune(encoders[r], X_train[r], y_train[r], X_val, y_val, configs[r], pretraining=pretraining,
                             encoder_config=encoder_config, on_event=replicate_events(on_event, r, n),
                             should_stop=should_stop, device=device, precision=precision)
    return models


def train_supervised_replicates(X_train: Sequence[np.ndarray], y_train: Sequence[np.ndarray], X_val: np.ndarray,
                                y_val: np.ndarray, configs: Sequence[FinetuneConfig], encoder_config: EncoderConfig,
                                *, on_event: Event | None = None, should_stop: Callable[[], bool] | None = None,
                                device: str = "cpu", precision: str = "fp32") -> list[TrainedClassifier]:
    """The supervised baseline's replicates (`train_supervised` for each config), batched."""
    configs = [FinetuneConfig.from_dict({**c.to_dict(), "strategy": SUPERVISED}) for c in configs]
    return finetune_replicates(None, X_train, y_train, X_val, y_val, configs, pretraining=None,
                               encoder_config=encoder_config, on_event=on_event, should_stop=should_stop,
                               device=device, precision=precision)


def _groups(X_train: Sequence[np.ndarray], config: FinetuneConfig, encoders: list[Encoder | None],
            encoder_config: EncoderConfig | None) -> list[list[int]]:
    """The replicates trained together: those with equally many labelled rows, in order of
    their first member; every replicate alone where batching cannot reproduce `finetune`
    (module docstring)."""
    shapes = [e.config for e in encoders if e is not None] + ([encoder_config] if encoder_config else [])
    if (config.strategy in HEAD_ONLY or config.dropout > 0 or config.encoder_dropout > 0
            or any(shape.dropout > 0 for shape in shapes)):
        return [[r] for r in range(len(X_train))]
    groups: dict[int, list[int]] = {}
    for r, X in enumerate(X_train):
        groups.setdefault(len(X), []).append(r)
    return list(groups.values())


class _Classifier(nn.Module):
    """encoder + head as one module, so that one stack holds both."""

    def __init__(self, encoder: Encoder, head: ClassifierHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class _Batched:
    """One batched fine-tuning run of replicates with equally many labelled rows."""

    def __init__(self, members: list[int], n_replicates: int, encoders: list[Encoder | None], X_train: list[np.ndarray],
                 y_train: list[np.ndarray], X_val: np.ndarray, y_val: np.ndarray, configs: list[FinetuneConfig],
                 pretraining: str | None, encoder_config: EncoderConfig | None, on_event: Event | None,
                 should_stop: Callable[[], bool] | None, device: torch.device, precision: str) -> None:
        self.configs, self.config, self.strategy = configs, configs[0], configs[0].strategy
        self.pretraining, self.should_stop, self.device, self.precision = pretraining, should_stop, device, precision
        self.emitters = [replicate_events(on_event, r, n_replicates) for r in members]
        self.X_val, self.y_val = _check_xy(X_val, y_val, "validation")
        self.train_sets = [_check_xy(X, y, "training") for X, y in zip(X_train, y_train)]
        self.name = SUPERVISED if self.strategy == SUPERVISED else model_name(pretraining, self.strategy)
        self._encoder_config = encoder_config
        with torch.random.fork_rng(devices=[]):  # the initialisation draws on the CPU, as in finetune
            self.replicas = [_Classifier(*self._initial(encoder, X, y, config))
                             for encoder, (X, y), config in zip(encoders, self.train_sets, configs)]
        self._last_event = 0.0

    def _initial(self, encoder: Encoder | None, X: np.ndarray, y: np.ndarray,
                 config: FinetuneConfig) -> tuple[Encoder, ClassifierHead]:
        """finetune's checks and initialisation of one replicate (global RNG seeded with its seed)."""
        if self.X_val.shape[1] != X.shape[1]:
            raise InputError(f"Training rows have {X.shape[1]} features but validation rows {self.X_val.shape[1]}",
                             "Encode both with the same TabularEncoder")
        if len(np.unique(y)) < 2:
            raise InputError("The labelled training rows hold only one class",
                             "Use a larger label fraction, or data with both outcomes")
        torch.manual_seed(config.seed)
        if self.strategy == SUPERVISED:
            if encoder is not None or self.pretraining is not None:
                raise ValueError("the supervised baseline starts from scratch: pass encoders=None, pretraining=None "
                                 "and the shape as encoder_config")
            encoder = Encoder(self._encoder_config or EncoderConfig(input_dim=X.shape[1]))
        else:
            if encoder is None or not self.pretraining:
                raise ValueError(f"strategy '{self.strategy}' needs pretrained encoders and the name of their "
                                 "pretraining")
            encoder = copy.deepcopy(encoder).cpu()
        if encoder.config.input_dim != X.shape[1]:
            raise InputError(f"The encoder expects {encoder.config.input_dim} features but the rows have "
                             f"{X.shape[1]}", "Fine-tune with the study the encoder was pretrained on")
        return encoder, ClassifierHead(encoder.embed_dim)

    def fit(self) -> list[TrainedClassifier]:
        started = time.perf_counter()
        device, cfg = self.device, self.config
        stack = StackedReplicas([replica.to(device) for replica in self.replicas])
        x_tr = torch.stack([torch.from_numpy(X) for X, _ in self.train_sets]).to(device)           # (R, n, d)
        y_tr = torch.stack([torch.from_numpy(y.astype(np.float32)) for _, y in self.train_sets]).to(device)
        x_va = torch.from_numpy(self.X_val).to(device)
        y_va = torch.from_numpy(self.y_val.astype(np.float32)).to(device)
        pos_weights = [(len(y) - float(y.sum())) / float(y.sum()) if cfg.class_weight == "balanced" else 1.0
                       for _, y in self.train_sets]
        histories, n_trainable, epochs = self._train(stack, x_tr, y_tr, x_va, y_va, pos_weights)
        seconds = time.perf_counter() - started
        return [self._classifier(i, replica, histories[i], n_trainable, epochs[i], pos_weights[i], seconds)
                for i, replica in enumerate(self.replicas)]

    def _train(self, stack: StackedReplicas, x_tr: torch.Tensor, y_tr: torch.Tensor, x_va: torch.Tensor,
               y_va: torch.Tensor, pos_weights: list[float]) -> tuple[list[list[dict]], int, list[dict]]:
        """finetune's mini-batch AdamW loop with early stopping, for every replicate at once.
        Returns per replicate its history and {"best_epoch", "epochs_run"}, and the number of
        parameters of one replicate that were trainable in at least one epoch."""
        cfg, strategy, device, size = self.config, self.strategy, self.device, stack.size
        model = stack.module
        depth = len(model.encoder.blocks)
        optimizer = torch.optim.AdamW(parameter_groups(model.encoder, model.head, strategy, cfg.lr,
                                                       cfg.encoder_lr_scale, cfg.weight_decay))
        n_rows = x_tr.shape[1]
        orders = [EpochOrder(n_rows, c.epoch_rows, np.random.default_rng(c.seed)) for c in self.configs]
        steps_per_epoch = len(batches(np.arange(orders[0].size), cfg.batch_size))
        # Early stopping reads at most validation_rows rows, each replicate its own as finetune does.
        stopping = [torch.from_numpy(bounded_rows(len(x_va), c.validation_rows, c.seed)).to(device)
                    for c in self.configs]
        total_steps = cfg.epochs * steps_per_epoch
        trained: dict[int, int] = {id(p): p[0].numel() for p in model.head.parameters()}
        pw = torch.tensor(pos_weights, dtype=torch.float32, device=device)
        replica_rows = torch.arange(size, device=device).unsqueeze(1)
        loss_fns = [nn.BCEWithLogitsLoss(pos_weight=torch.tensor(p, dtype=torch.float32, device=device))
                    for p in pos_weights]
        histories: list[list[dict]] = [[] for _ in range(size)]
        best_loss, best_state = [math.inf] * size, [None] * size
        best_epoch, bad_epochs, stopped = [0] * size, [0] * size, [False] * size
        stage = -1
        for epoch in range(cfg.epochs):
            active = [i for i in range(size) if not stopped[i]]
            if not active:
                break
            n_unfrozen = unfrozen_blocks(strategy, epoch, depth, cfg.stage_epochs)
            configure_encoder(model.encoder, strategy, n_unfrozen)
            trained |= {id(p): p[0].numel() for p in model.encoder.parameters() if p.requires_grad}
            if n_unfrozen != stage:  # a new gradual stage gets its own patience
                stage, bad_epochs = n_unfrozen, [0] * size
            model.head.train()
            epoch_start, rows_seen = time.perf_counter(), 0
            loss_sum = torch.zeros(size, dtype=torch.float64, device=device)
            epoch_batches = [batches(order.next_epoch(), cfg.batch_size) for order in orders]
            for step, rows in enumerate(zip(*epoch_batches)):
                self._check_cancel()
                index = torch.from_numpy(np.stack(rows)).to(device)                        # (R, b)
                with autocast(self.precision, device):
                    logits = stack(x_tr[replica_rows, index])
                losses = torch.vmap(_bce)(logits.float(), y_tr[replica_rows, index], pw)  # (R,)
                optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()
                optimizer.step()
                loss_sum += losses.detach().double() * index.shape[1]
                rows_seen += index.shape[1]
                self._emit_step(active, epoch, step, steps_per_epoch, total_steps, losses.detach(), rows_seen, epoch_start)
            seconds = time.perf_counter() - epoch_start
            for i in active:
                val_loss = self._val_loss(stack.replicas[i], x_va[stopping[i]], y_va[stopping[i]], loss_fns[i])
                record = {"epoch": epoch + 1, "train_loss": float(loss_sum[i]) / rows_seen, "val_loss": val_loss,
                          "seconds": seconds, "rows_per_second": rows_seen / seconds if seconds > 0 else None}
                if strategy == "gradual":
                    record["unfrozen_blocks"] = list(range(depth - n_unfrozen, depth))
                histories[i].append(record)
                if val_loss < best_loss[i] - cfg.min_delta:
                    best_loss[i], best_epoch[i], bad_epochs[i] = val_loss, epoch + 1, 0
                    best_state[i] = {k: v.detach().clone() for k, v in stack.replicas[i].state_dict().items()}
                else:
                    bad_epochs[i] += 1
                self._emit(i, {"epoch": epoch + 1, "step": steps_per_epoch, "total_steps": steps_per_epoch,
                               "loss": record["train_loss"], "val_loss": val_loss,
                               "rows_per_second": record["rows_per_second"], "fraction": (epoch + 1) / cfg.epochs,
                               "message": f"{self.name}: epoch {epoch + 1}/{cfg.epochs}"})
                last_stage = strategy != "gradual" or n_unfrozen == depth
                stopped[i] = last_stage and bad_epochs[i] >= cfg.patience
        for i, state in enumerate(best_state):
            if state is not None:
                stack.replicas[i].load_state_dict(state)
        epochs = [{"best_epoch": best_epoch[i], "epochs_run": len(histories[i])} for i in range(size)]
        return histories, sum(trained.values()), epochs

    def _val_loss(self, replica: _Classifier, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module) -> float:
        """finetune's validation loss of one replicate (eval mode: no dropout, BN running statistics)."""
        with autocast(self.precision, self.device):
            logits = _forward(replica.head, _forward(replica.encoder, x))
        return float(loss_fn(logits.float(), y))

    def _classifier(self, i: int, replica: _Classifier, history: list[dict], n_trainable: int, epochs: dict,
                    pos_weight: float, seconds: float) -> TrainedClassifier:
        """finetune's result for replicate i: its own CPU copy of the (best) weights, calibrated."""
        cfg = self.configs[i]
        encoder, head = Encoder(replica.encoder.config), ClassifierHead(replica.encoder.embed_dim)
        encoder.load_state_dict({k: v.detach().cpu() for k, v in replica.encoder.state_dict().items()})
        head.load_state_dict({k: v.detach().cpu() for k, v in replica.head.state_dict().items()})
        encoder.eval().requires_grad_(False)
        X, y = self.train_sets[i]
        extra = {"n_train": len(X), "n_val": len(self.X_val),
                 "n_val_stopping": min(len(self.X_val), cfg.validation_rows), "pos_weight": pos_weight, **epochs,
                 "seconds": seconds}
        model = TrainedClassifier(name=self.name, pretraining=self.pretraining, strategy=self.strategy,
                                  encoder=encoder, head=head.eval(), n_trainable_params=n_trainable,
                                  history=history, config=cfg.to_dict(), extra=extra)
        if cfg.calibrate:
            model.calibration = calibration_summary(model.logits(self.X_val), self.y_val)
            model.temperature = model.calibration["temperature"]
        self._emit(i, {"fraction": 1.0, "message": f"{self.name}: done"})
        return model

    def _check_cancel(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(f"fine-tuning of {self.name} cancelled")

    def _emit_step(self, active: list[int], epoch: int, step: int, steps_per_epoch: int, total_steps: int,
                   losses: torch.Tensor, rows_seen: int, epoch_start: float) -> None:
        if all(e is None for e in self.emitters) or time.perf_counter() - self._last_event < EVENT_EVERY_S:
            return
        elapsed = time.perf_counter() - epoch_start
        for i in active:
            self._emit(i, {"epoch": epoch + 1, "step": step + 1, "total_steps": steps_per_epoch,
                           "loss": float(losses[i]), "rows_per_second": rows_seen / elapsed if elapsed > 0 else None,
                           "fraction": (epoch * steps_per_epoch + step + 1) / total_steps})

    def _emit(self, i: int, event: dict) -> None:
        if self.emitters[i] is None:
            return
        self._last_event = time.perf_counter()
        self.emitters[i]({"stage": "finetune", "model": self.name, "epochs": self.configs[i].epochs, **event})


def _bce(logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    """finetune's loss of one replicate: mean BCE-with-logits, positives weighted by pos_weight."""
    return F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
