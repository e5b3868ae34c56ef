"""Differentially private fine-tuning (DP-SGD with Opacus): a model whose training on the
labelled rows is (epsilon, delta)-differentially private, for the question "what does a privacy
guarantee cost, and whom?" (issue 19; Bagdasaryan et al. 2019: DP hurts small groups most).

The mechanism (Abadi et al. 2016, as Opacus implements it):
    each step draws a Poisson batch (every labelled row joins with probability q = B / n),
    computes every row's own gradient g_i of the loss, clips it to norm C,
        g_i <- g_i * min(1, C / ||g_i||)
    and adds Gaussian noise of standard deviation sigma * C to their sum:
        g = (sum_i g_i + N(0, sigma^2 C^2 I)) / B
    AdamW then steps on g. sigma is the smallest noise that keeps the whole run (a fixed number
    of epochs, so n_steps = epochs / q) within target_epsilon at delta (Opacus'
    `make_private_with_epsilon`, RDP accountant); the accountant's spent epsilon after training
    is recorded (`privacy["epsilon"]`, at most the target). delta = 1 / n_train unless given.

What is trained (the loss, head and learning rates are those of core.learning.finetune.training):
    supervised   a fresh encoder + head, every Linear weight and bias
    full         a copy of the pretrained encoder + head, every Linear weight and bias
    linear       the head alone, on the frozen pretrained encoder (DP-SGD, not the L-BFGS probe)

BatchNorm: per-sample gradients need every row's output to depend on that row alone, and a
BatchNorm in train mode normalises by the batch's statistics (every row's gradient then depends
on the others, and the running statistics would record the batch outside the noise). So in
every DP model each BatchNorm stays in eval mode, statistics and scale/shift frozen: it is a
fixed per-channel affine map. In `full` and `linear` that map is the pretraining's (statistics
of the pretraining rows); in `supervised` it is the freshly initialised one (mean 0, variance 1,
scale 1, shift 0: the identity up to 1 / sqrt(1 + 1e-5)), so the private model from scratch is a
plain MLP. The saved folder is a TrainedClassifier's (the same Encoder with its BatchNorm
buffers), so loading, the Explain page and the report read it unchanged. GroupNorm (Opacus'
`ModuleValidator.fix`) would change the architecture and the saved format; measured on German
credit (private model from scratch, epsilon 3, 20 epochs, seeds 0-2) both gave accuracy 0.70
(the majority label: 698 labelled rows are few for DP-SGD) and ROC AUC 0.668 frozen against
0.688 with GroupNorm (+0.03, +0.03, -0.002 by seed): better ranking, no better decisions, so
the loadable format won (docs/privacy.md).

No early stopping and no model selection on validation: the run trains exactly `epochs`
epochs and keeps the last weights (each look at validation would be outside the guarantee);
the validation loss is recorded per epoch only to be read. Temperature scaling is fitted on the
validation rows afterwards (it changes the scores, not the decisions at threshold 0.5).

What the guarantee covers and what it does not (`privacy["covers"]`, `privacy["not_covered"]`):
the labelled training rows of this fine-tuning, and nothing else: not the pretraining rows
(the encoder, and the BatchNorm statistics, were fitted on them without noise), not the
TabularEncoder (category lists, scaling) fitted on the data, not the validation rows
(temperature scaling), not the choice of hyperparameters, and not the test rows.

Determinism: batches from a torch.Generator and the noise from another, both seeded with
config.seed; initialisation and dropout inside torch.random.fork_rng as in the ordinary loop.
Opacus is imported inside the function that needs it: it loads torch's functorch and scipy
pieces, and `equiscope --help` must not.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from core.errors import Cancelled, InputError
from core.learning.calibration import calibration_summary
from core.learning.finetune.classifier import TrainedClassifier
from core.learning.finetune.config import FinetuneConfig
from core.learning.finetune.strategies import parameter_groups
from core.learning.models import ClassifierHead, Encoder, EncoderConfig, batchnorm_layers
from core.vocabulary import SUPERVISED

#: The strategies that have a private version, and what each trains (module docstring).
PRIVATE_STRATEGIES = (SUPERVISED, "full", "linear")
#: Renyi-DP accounting (Mironov 2017): on German credit PRV's accountant (Opacus' default, a
#: slightly tighter epsilon) spent 27 s of a 47 s private fine-tuning finding sigma and the spent
#: epsilon; RDP needs 0.4-3.6 s for the same question and asks at most 12% more noise.
ACCOUNTANT = "rdp"
#: The Renyi orders the accountant minimises over: the integers (Opacus' default adds 99 fractional
#: ones, whose log-moments cost 5-20x the time: 20.6 s against 1.0 s for epsilon 8 at q = 0.2,
#: for 0.6-2.6% less noise at the same epsilon). The spent epsilon is computed over the same orders.
ALPHAS = list(range(2, 64))
#: Opacus' ghost clipping: each row's gradient norm from its activations and backprops, then one
#: backward of the clipped loss, without materialising the per-sample gradients ("hooks" mode
#: keeps a (batch, parameters) tensor: 1.1 s a step of 512 rows for the default encoder on one
#: core, against 0.11 s here and 0.02 s without DP). The clipped sum is the same.
GRAD_SAMPLE_MODE = "ghost"
EVENT_EVERY_S = 0.5

COVERS = "the labelled training rows of this fine-tuning"
NOT_COVERED = ["the pretraining rows (the encoder and its BatchNorm statistics were fitted on them without noise)",
               "the TabularEncoder fitted on the data (category lists, scaling)",
               "the validation rows (temperature scaling is fitted on them)",
               "the choice of hyperparameters (epochs, learning rate, clipping norm)",
               "the test rows"]

Event = Callable[[dict], None]


class FrozenNormNet(nn.Module):
    """encoder -> dropout -> head, whose BatchNorm layers stay in eval mode whatever `train()`
    says (module docstring: a train-mode BatchNorm mixes the rows of a batch)."""

    def __init__(self, encoder: Encoder, head: ClassifierHead, dropout: float) -> None:
        super().__init__()
        self.encoder, self.dropout, self.head = encoder, nn.Dropout(dropout), head

    def train(self, mode: bool = True) -> FrozenNormNet:
        super().train(mode)
        for norm in batchnorm_layers(self):
            norm.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.encoder(x)))


def freeze_for(net: FrozenNormNet, strategy: str) -> None:
    """requires_grad per the module docstring's table: BatchNorm never trains; `linear` trains
    the head alone, `full` and `supervised` every Linear layer too."""
    if strategy not in PRIVATE_STRATEGIES:
        raise ValueError(f"strategy '{strategy}' has no private version; choose from {PRIVATE_STRATEGIES}")
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    trained = [net.head] + ([] if strategy == "linear" else [net.encoder])
    for module in trained:
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                for parameter in layer.parameters():
                    parameter.requires_grad_(True)


def balanced_loss(y: np.ndarray, class_weight: str | None) -> nn.BCEWithLogitsLoss:
    """The ordinary loop's objective: BCE with pos_weight = n_negative / n_positive when balanced."""
    n_pos = float(np.sum(y))
    pos_weight = (len(y) - n_pos) / n_pos if class_weight == "balanced" else 1.0
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, dtype=torch.float32))


def private_finetune(encoder: Encoder | None, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray,
                     y_val: np.ndarray, config: FinetuneConfig, *, name: str, base: str, pretraining: str | None,
                     target_epsilon: float, delta: float | None = None, max_grad_norm: float = 1.0,
                     encoder_config: EncoderConfig | None = None, on_event: Event | None = None,
                     should_stop: Callable[[], bool] | None = None) -> TrainedClassifier:
    """DP fine-tuning of a copy of `encoder` with config.strategy ("full", "linear"), or of a
    fresh encoder of shape `encoder_config` ("supervised"), for exactly config.epochs epochs.
    Returns a TrainedClassifier called `name` carrying `base` and `privacy` (module docstring);
    `encoder` is never modified. Raises core.errors.Cancelled when should_stop() turns True.
    The settings are checked where they are given (core.run.config.check_privacy)."""
    from opacus import PrivacyEngine  # here: a heavy import (functorch, scipy), not for `equiscope --help`

    strategy = config.strategy
    X_train, y_train = np.ascontiguousarray(X_train, dtype=np.float32), np.asarray(y_train).astype(np.int64)
    X_val, y_val = np.ascontiguousarray(X_val, dtype=np.float32), np.asarray(y_val).astype(np.int64)
    if len(np.unique(y_train)) < 2:
        raise InputError("The labelled training rows hold only one class",
                         "Use a larger label fraction, or data with both outcomes")
    n = len(X_train)
    delta = 1.0 / n if delta is None else float(delta)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if strategy == SUPERVISED:
            encoder = Encoder(encoder_config or EncoderConfig(input_dim=X_train.shape[1]))
        elif encoder is None:
            raise ValueError(f"strategy '{strategy}' needs a pretrained encoder")
        else:
            encoder = copy.deepcopy(encoder).cpu()
        net = FrozenNormNet(encoder, ClassifierHead(encoder.embed_dim), config.dropout)
        freeze_for(net, strategy)
        groups = parameter_groups(net.encoder, net.head, "full" if strategy != SUPERVISED else SUPERVISED,
                                  config.lr, config.encoder_lr_scale, config.weight_decay)
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]])
        dataset = torch.utils.data.TensorDataset(torch.from_numpy(X_train),
                                                 torch.from_numpy(y_train.astype(np.float32)))
        batch_size = min(config.batch_size, n)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size,
                                             generator=torch.Generator().manual_seed(config.seed))
        engine = PrivacyEngine(accountant=ACCOUNTANT)
        net.train()
        private_net, optimizer, loss_fn, loader = engine.make_private_with_epsilon(
            module=net, optimizer=optimizer, data_loader=loader, criterion=balanced_loss(y_train, config.class_weight),
            target_epsilon=float(target_epsilon), target_delta=delta, epochs=int(config.epochs),
            max_grad_norm=float(max_grad_norm), poisson_sampling=True, grad_sample_mode=GRAD_SAMPLE_MODE,
            noise_generator=torch.Generator().manual_seed(config.seed + 1), alphas=ALPHAS)
        history = _train(private_net, optimizer, loader, loss_fn, net, X_val, y_val, config.epochs, name, on_event,
                         should_stop)
        spent = float(engine.accountant.get_epsilon(delta=delta, alphas=ALPHAS))
        private_net.remove_hooks()
    n_trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    clean_encoder, clean_head = _detached(net)
    privacy = {"epsilon": spent, "delta": delta, "target_epsilon": float(target_epsilon),
               "max_grad_norm": float(max_grad_norm), "noise_multiplier": float(optimizer.noise_multiplier),
               "sample_rate": float(batch_size / n), "epochs": int(config.epochs),
               "steps": int(len(loader) * config.epochs),
               "accountant": ACCOUNTANT, "n_train": n,
               "normalisation": "BatchNorm frozen in eval mode (fixed statistics and scale/shift)",
               "model_selection": "none: the last epoch's weights, no early stopping",
               "covers": COVERS, "not_covered": list(NOT_COVERED)}
    model = TrainedClassifier(name=name, pretraining=pretraining, strategy=strategy, encoder=clean_encoder,
                              head=clean_head, n_trainable_params=n_trainable, history=history,
                              config=config.to_dict(),
                              extra={"n_train": n, "n_val": len(X_val), "seconds": time.perf_counter() - started,
                                     "base": base, "privacy": privacy})
    model.base, model.privacy = base, privacy  # read by the audit (core.run.variants' contract)
    if config.calibrate:
        model.calibration = calibration_summary(model.logits(X_val), y_val)
        model.temperature = model.calibration["temperature"]
    if on_event is not None:
        on_event({"stage": "finetune", "model": name, "fraction": 1.0, "message": f"{name}: done"})
    return model


def _train(private_net: nn.Module, optimizer, loader, loss_fn: nn.Module, net: FrozenNormNet, X_val: np.ndarray,
           y_val: np.ndarray, epochs: int, name: str, on_event: Event | None,
           should_stop: Callable[[], bool] | None) -> list[dict]:
    """`epochs` passes of Poisson batches; the last weights are kept (no selection on validation)."""
    history: list[dict] = []
    x_va, y_va = torch.from_numpy(X_val), torch.from_numpy(y_val.astype(np.float32))
    val_loss_fn = loss_fn.criterion  # the plain objective inside Opacus' clipping wrapper
    last_event = 0.0
    for epoch in range(epochs):
        private_net.train()
        epoch_start, loss_sum, rows_seen = time.perf_counter(), 0.0, 0
        for x, y in loader:
            if should_stop is not None and should_stop():
                raise Cancelled(f"private fine-tuning of {name} cancelled")
            optimizer.zero_grad(set_to_none=True)
            if len(y):
                loss = loss_fn(private_net(x), y)  # ghost clipping: backward() clips every row's gradient
                loss.backward()
                loss_sum += float(loss.detach()) * len(y)
            else:  # an empty Poisson batch still takes its noise-only step, as the accountant assumes
                for parameter in optimizer.params:
                    parameter.grad = torch.zeros_like(parameter)
            optimizer.step()
            rows_seen += len(y)
            if on_event is not None and time.perf_counter() - last_event > EVENT_EVERY_S:
                last_event = time.perf_counter()
                on_event({"stage": "finetune", "model": name, "epoch": epoch + 1, "epochs": epochs,
                          "loss": loss_sum / max(rows_seen, 1), "fraction": (epoch + 0.5) / epochs})
        net.eval()
        with torch.no_grad():
            val_loss = float(val_loss_fn(net(x_va), y_va))
        seconds = time.perf_counter() - epoch_start
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / max(rows_seen, 1), "val_loss": val_loss,
                        "seconds": seconds})
        if on_event is not None:
            on_event({"stage": "finetune", "model": name, "epoch": epoch + 1, "epochs": epochs,
                      "val_loss": val_loss, "fraction": (epoch + 1) / epochs,
                      "message": f"{name}: epoch {epoch + 1}/{epochs}"})
    return history


def _detached(net: FrozenNormNet) -> tuple[Encoder, ClassifierHead]:
    """Fresh encoder and head with the trained weights: no Opacus hooks or per-sample
    attributes travel with the model (it is pickled back from a worker and saved)."""
    encoder = Encoder(net.encoder.config)
    encoder.load_state_dict(net.encoder.state_dict())
    head = ClassifierHead(net.head.linear.in_features)
    head.load_state_dict(net.head.state_dict())
    for module in (encoder, head):
        module.eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    return encoder, head

