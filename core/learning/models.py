"""Encoders and heads shared by pretraining (core.learning.ssl, core.learning.pretrain) and fine-tuning.

Encoder
    x (n, input_dim) -> blocks[0] -> ... -> blocks[depth-1] -> h (n, embed_dim)
    each block:  z = Dropout(ReLU(BatchNorm1d(Linear(x))))   (Linear without bias: BN has one)
    residual:    block output = x + z when the block's input and output widths are equal
                 (the hidden-to-hidden blocks); the first and last blocks change width and
                 stay plain.
    widths:      input_dim -> hidden_dim -> ... -> hidden_dim -> embed_dim
                 (depth = 1 means a single input_dim -> embed_dim block).

BatchNorm is deliberate: fine-tuning strategies update only BN running statistics
(`bn-stats`) or only BN scale/shift (`bn-affine`).

How fine-tuning finds the parts it needs (stable API):
    encoder.blocks                      nn.ModuleList, blocks[0] is nearest the input,
                                        blocks[-1] produces the embedding. "Unfreeze from the
                                        top down" = iterate `reversed(encoder.blocks)`.
    block.linear / block.norm           the Linear and the BatchNorm1d of a block
    encoder.batchnorm_layers()          every BatchNorm module, in order (also matches
                                        nn.SyncBatchNorm after convert_sync_batchnorm);
                                        the same as `batchnorm_layers(module)` for any module.
    encoder.config / encoder.embed_dim  the EncoderConfig and the output width
    EncoderConfig.to_dict / from_dict   JSON-able round trip (used by checkpoints); the class
                                        lives in core.learning.encoder_config (no torch), so
                                        the CLI reads its defaults without loading torch

Heads
    MLPHead         Linear -> BN -> ReLU (repeated) -> Linear [-> BN without affine]
                    projection heads (SimCLR, SCARF, BYOL, VICReg, Barlow, SwAV), predictor
                    heads (BYOL, SimSiam) and reconstruction heads (VIME, DAE).
    ClassifierHead  Linear(embed_dim, 1) -> one logit for the positive label.
"""

from __future__ import annotations

import torch
from torch import nn

from core.learning.encoder_config import EncoderConfig


class Block(nn.Module):
    """Linear -> BatchNorm1d -> ReLU -> Dropout, plus the input when `residual`."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0,
                 residual: bool = False) -> None:
        super().__init__()
        # No bias: the BatchNorm right after removes it (its gradient is zero up to rounding,
        # and Adam would turn that rounding noise into lr-sized steps).
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        self.norm = nn.BatchNorm1d(out_dim)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.residual = bool(residual and in_dim == out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.drop(self.act(self.norm(self.linear(x))))
        return x + z if self.residual else z


class Encoder(nn.Module):
    """MLP encoder with BatchNorm; `forward(x) -> (n, embed_dim)`."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths()
        self.blocks = nn.ModuleList(
            Block(widths[i], widths[i + 1], config.dropout, config.residual)
            for i in range(config.depth))

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def batchnorm_layers(self) -> list[nn.Module]:
        return batchnorm_layers(self)


def batchnorm_layers(module: nn.Module) -> list[nn.Module]:
    """Every BatchNorm (incl. SyncBatchNorm) inside `module`, in registration order."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class MLPHead(nn.Module):
    """(Linear -> BN -> ReLU) x (depth - 1) -> Linear [-> BatchNorm1d(affine=False)].

    depth = 1 is a single Linear. `last_bn` adds a parameter-free BN on the output
    (Barlow Twins / SimSiam put BN on the projector output).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, depth: int = 2,
                 last_bn: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(depth - 1):
            layers += [nn.Linear(width, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim),
                       nn.ReLU()]
            width = hidden_dim
        layers.append(nn.Linear(width, out_dim))
        if last_bn:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ClassifierHead(nn.Module):
    """Linear(embed_dim, 1): one logit for the positive label."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(embed_dim, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h).squeeze(-1)
