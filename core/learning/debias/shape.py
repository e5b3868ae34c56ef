"""The wider, shallower encoder: twice the hidden width, half the blocks (rounded up, at least 1).

    hidden_dim' = 2 * hidden_dim,   depth' = max(1, ceil(depth / 2)),   embed_dim' = embed_dim

Half rounded up, because the default 3 blocks halved down would leave 1 block, input -> embedding,
in which the hidden width does not occur at all: 2 blocks of twice the width are the wider and
shallower encoder. The embedding keeps its width, so the head, the leakage probes and CKA compare
like with like. Everything else (dropout, residual) is the default encoder's.
"""

from __future__ import annotations

import math
from dataclasses import replace

from core.learning.encoder_config import EncoderConfig


def wide_shallow(config: EncoderConfig) -> EncoderConfig:
    """The shape of the module docstring."""
    return replace(config, hidden_dim=2 * config.hidden_dim, depth=max(1, math.ceil(config.depth / 2)))
