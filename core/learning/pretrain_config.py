"""PretrainConfig: every knob of a pretraining run (core.learning.pretrain), validated, JSON-able.

Plain data without torch, so `equiscope pretrain --help` shows these defaults without loading it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.errors import InputError
from core.learning.encoder_config import EncoderConfig

#: The precisions a run may ask for (core.learning.precision resolves "auto"); kept here, not
#: there, because that module loads torch and this one must not.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class PretrainConfig:
    """Everything that defines a pretraining run (JSON-able via to_dict / from_dict).

    method           SSL objective, a name of core.learning.ssl's registry
    method_params    the objective's own settings (its `defaults` lists them)
    encoder          EncoderConfig fields but input_dim (that comes from the data)
    epochs           passes over the training rows; the schedule is planned for all of them
    batch_size       global batch (split across ranks under DDP)
    lr               AdamW peak learning rate, reached after the warmup
    weight_decay     AdamW decoupled weight decay on weight matrices (not biases, not BN)
    warmup_fraction  share of the steps with a linearly rising learning rate
    min_lr_ratio     the cosine decay ends at lr * min_lr_ratio
    patience         early stopping after this many epochs without a validation loss lower
                     than the best - min_delta (<= 0: never)
    min_delta        the improvement an epoch needs to count
    seed             initialisation, permutations and views all derive from it
    device           "auto" (cuda > mps > cpu), or a torch device string
    precision        "fp32", "bf16" (autocast), or "auto": bf16 where the device computes it
                     natively (core.learning.precision)
    """

    method: str = "scarf"
    method_params: dict[str, Any] = field(default_factory=dict)
    encoder: dict[str, Any] = field(default_factory=dict)
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.01
    patience: int = 5
    min_delta: float = 0.0
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"

    def validate(self) -> None:
        # The registry imports every objective (torch): loaded here, so the CLI's parser can
        # read this class's defaults without torch.
        from core.learning.ssl import get_method

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
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
                             "Use auto, fp32 or bf16")
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
