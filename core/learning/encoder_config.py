"""EncoderConfig: the shape of an encoder (core.learning.models.Encoder), JSON-able.

Plain data without torch, so the CLI's help (core.cli.pretrain) and PretrainConfig read the
defaults without loading it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class EncoderConfig:
    """Shape of an `Encoder` (the formula is in core.learning.models' docstring)."""

    input_dim: int
    hidden_dim: int = 256
    depth: int = 3
    embed_dim: int = 128
    dropout: float = 0.0
    residual: bool = False

    def __post_init__(self) -> None:
        if self.input_dim < 1 or self.hidden_dim < 1 or self.embed_dim < 1:
            raise ValueError(f"encoder widths must be >= 1, got {self}")
        if self.depth < 1:
            raise ValueError(f"encoder depth must be >= 1, got {self.depth}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def widths(self) -> list[int]:
        """[input_dim, hidden_dim, ..., hidden_dim, embed_dim] with depth + 1 entries."""
        return [self.input_dim] + [self.hidden_dim] * (self.depth - 1) + [self.embed_dim]
