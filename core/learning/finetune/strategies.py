"""What each fine-tuning strategy trains, and in which mode each part of the encoder runs.

    strategy     trainable parameters                    encoder mode while training
    linear       head                                    eval (pretraining BN statistics)
    bn-stats     head (BN running statistics re-         eval, after the re-estimation
                 estimated first, without gradients)
    bn-affine    head + every BN scale and shift         eval: BN normalises with the
                                                         pretraining running statistics
    gradual      head + the top s blocks in stage s      unfrozen blocks train, frozen eval
    full         head + whole encoder                    train
    supervised   head + whole (freshly initialised)      train
                 encoder

"Trainable" means `requires_grad`; a frozen parameter gets no gradient, so AdamW (which
skips parameters whose grad is None) changes neither it nor its weight decay. A module in
eval mode does not update its BN running statistics and applies no dropout, so everything
frozen stays bit-identical.

bn-affine keeps BN in eval mode on purpose: it then changes the scale/shift and nothing
else, so `bn-stats` (statistics only) and `bn-affine` (affine only) isolate the two parts
of BatchNorm. Per channel, gamma * (a - mu) / sigma + beta with trainable gamma and beta can
express any affine map of the pre-BN activation a, so fixed pretraining statistics do not
limit what bn-affine can learn; batch statistics would add noise with few labels.

BN re-estimation (`bn-stats`), for every BN layer l with momentum None (cumulative average):
    running_mean_l = (1/K) sum_k mean_k(a_l),   running_var_l = (1/K) sum_k var_k(a_l)
over the K batches of one pass through the labelled training rows (shuffled, nearly equal
batch sizes), each batch normalised by its own statistics on the way up (train-mode BN),
with dropout off and under no_grad (as torch.optim.swa_utils.update_bn does).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.learning.models import Encoder

HEAD_ONLY = ("linear", "bn-stats")  # the encoder is frozen in eval mode: embeddings can be cached


def batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split row positions into ceil(n / batch_size) batches of nearly equal size, each of at
    least 2 rows when n >= 2 (train-mode BatchNorm cannot normalise a single row)."""
    k = max(1, -(-len(order) // batch_size))
    while k > 1 and len(order) // k < 2:
        k -= 1
    return np.array_split(order, k)


def unfrozen_blocks(strategy: str, epoch: int, depth: int, stage_epochs: int) -> int:
    """How many of the encoder's top blocks train in `epoch` (0-based).

    gradual: stage s = epoch // stage_epochs trains the top min(s, depth) blocks, so stage 0
    is the head alone, then blocks[-1], then blocks[-2:], ...; full and supervised: all.
    """
    if strategy in ("full", "supervised"):
        return depth
    if strategy == "gradual":
        return min(depth, epoch // stage_epochs)
    return 0


def configure_encoder(encoder: Encoder, strategy: str, n_unfrozen: int) -> None:
    """Set requires_grad and train/eval mode of the encoder for one epoch (table above)."""
    encoder.eval()
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    if strategy == "bn-affine":
        for norm in encoder.batchnorm_layers():
            for parameter in norm.parameters():
                parameter.requires_grad_(True)
        return
    depth = len(encoder.blocks)
    for block in list(encoder.blocks)[depth - n_unfrozen:] if n_unfrozen > 0 else []:
        block.train()
        for parameter in block.parameters():
            parameter.requires_grad_(True)


def reestimate_bn_stats(encoder: Encoder, X: torch.Tensor, batch_size: int,
                        rng: np.random.Generator) -> int:
    """Replace every BN layer's running statistics by their cumulative average over one
    shuffled pass through X (formula in the module docstring). Returns the number of batches."""
    norms = encoder.batchnorm_layers()
    momenta = [norm.momentum for norm in norms]
    encoder.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    parts = batches(rng.permutation(len(X)), batch_size)
    with torch.no_grad():
        for rows in parts:
            encoder(X[torch.from_numpy(rows)])
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    encoder.eval()
    return len(parts)


def parameter_groups(encoder: Encoder, head: nn.Module, strategy: str, lr: float,
                     encoder_lr_scale: float, weight_decay: float) -> list[dict]:
    """AdamW groups of the strategies trained by the mini-batch loop (all but HEAD_ONLY):
    Linear weights decay, biases and BN parameters do not; the encoder's learning rate is
    lr * encoder_lr_scale in `full` and `gradual`, lr otherwise."""
    scale = encoder_lr_scale if strategy in ("full", "gradual") else 1.0
    groups = _split_decay(head, lr, weight_decay) + _split_decay(encoder, lr * scale, weight_decay)
    return [g for g in groups if g["params"]]


def _split_decay(module: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    decay = [m.weight for m in module.modules() if isinstance(m, nn.Linear)]
    decay_ids = {id(p) for p in decay}
    rest = [p for p in module.parameters() if id(p) not in decay_ids]
    return [{"params": decay, "lr": lr, "weight_decay": weight_decay},
            {"params": rest, "lr": lr, "weight_decay": 0.0}]
