"""FinetuneConfig: every knob of a fine-tuning run, validated, JSON-able."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from core.errors import InputError
from core.vocabulary import STRATEGIES, SUPERVISED

CLASS_WEIGHTS = (None, "balanced")

#: A table with fewer labelled training rows than this gets SMALL_TABLE_FINETUNE.
SMALL_TABLE_ROWS = 2_000
#: Fine-tuning on a small table: small batches (more steps per epoch), dropout on the embedding and
#: after every encoder block (while fine-tuning only), and weight decay.
SMALL_TABLE_FINETUNE = {"batch_size": 64, "dropout": 0.3, "encoder_dropout": 0.2, "weight_decay": 0.01}


def table_size_defaults(n_labelled: int) -> dict[str, Any]:
    """The FinetuneConfig values for a table with `n_labelled` labelled training rows:
    SMALL_TABLE_FINETUNE below SMALL_TABLE_ROWS, else none (the dataclass defaults).

    Why (docs/finetuning.md, "Small tables"): on German credit (698 labelled rows) batches of 512
    meant 2 steps an epoch, and every model that trains its encoder overfitted within a few epochs:
    test ROC AUC, before -> after (1 replicate, seed 0): supervised 0.772 -> 0.795, scarf+full
    0.798 -> 0.810, scarf+gradual 0.785 -> 0.809, scarf+bn-affine 0.581 -> 0.741 (logistic
    regression: 0.813). A smaller encoder (1 block of 128) took the supervised MLP to 0.814 but the
    pretrained ones down to 0.74-0.75, so the encoder keeps its shape. On COMPAS (4,324 rows) the
    same settings took the supervised MLP from 0.769 down to 0.752, so the threshold sits below
    it; COMPAS and Adult (31,654 rows) are unchanged.

    encoder_dropout 0.2 (issue 16 item 4, second round): the models still overfitted by epoch 3
    (German: train loss 0.34, validation loss rising from epoch 4). Dropout after each encoder block
    while fine-tuning, mean test ROC AUC of 3 fine-tuning seeds on 4 study splits (seeds 0-3) of
    German, before -> after: supervised 0.795 -> 0.804 (split 0; +0.005 over the 4 splits),
    scarf+full +0.0035, scarf+gradual +0.006, none lower on any split (supervised, split 3:
    -0.0002); bn-affine unchanged (its encoder stays in eval mode). 0.3 took full and gradual
    down on 3 splits of 4, 0.4 all three.
    Pretraining keeps the encoder's own dropout (0): it is a fine-tuning setting only.
    """
    return dict(SMALL_TABLE_FINETUNE) if n_labelled < SMALL_TABLE_ROWS else {}


@dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run (see docs/finetuning.md for what each strategy trains).

    strategy          one of core.vocabulary's STRATEGIES, or SUPERVISED (from-scratch baseline)
    epochs            maximum passes over the labelled training rows (`linear` and `bn-stats`
                      fit their head by L-BFGS instead: epochs, lr, batch size, dropout and
                      early stopping do not apply to them, see core.learning.finetune.probe)
    batch_size        rows per step (batches are split to nearly equal sizes <= batch_size)
    lr                AdamW learning rate of the head (and of BN scale/shift in bn-affine, and
                      of the whole encoder in the supervised baseline)
    encoder_lr_scale  encoder learning rate = lr * encoder_lr_scale in `full` and `gradual`
    weight_decay      AdamW decoupled weight decay on Linear weights (not biases, not BN)
    dropout           dropout on the embedding, in front of the head, while training
    encoder_dropout   dropout after every encoder block while its block trains (full, gradual,
                      supervised; bn-affine and the L-BFGS probes keep the encoder in eval mode,
                      so it does not act there); 0 leaves the encoder's own (EncoderConfig.dropout)
    class_weight      None, or "balanced": BCE pos_weight = n_negative / n_positive
    patience          stop after this many epochs without a lower validation loss, and
                      keep the weights of the best epoch
    min_delta         an epoch improves when val_loss < best - min_delta
    stage_epochs      `gradual`: epochs per stage (stage 0 = head only, stage s = top s blocks)
    probe_l2          L2 penalty of the L-BFGS probe of `linear` / `bn-stats`; None chooses it
                      on validation loss
    calibrate         fit temperature scaling on the validation rows after training
    epoch_rows        rows one epoch trains on: every labelled row up to this many, else the next
                      `epoch_rows` of a running shuffled order (so `epochs` bounds the steps, not
                      passes over a table of any size), and the most training rows the L-BFGS probe
                      of `linear` / `bn-stats` is fitted on (a seeded uniform subsample)
    validation_rows   most validation rows early stopping reads each epoch (a seeded uniform
                      subsample; calibration still uses every validation row)
    seed              everything random (head init, shuffling, dropout) derives from it

    epoch_rows and validation_rows (issue 22): on Adult x4 (126,617 labelled rows, each row 4
    times) every epoch was 4 passes and early stopping could not see overfitting, so fine-tuning
    grew 5.1x for 4x the rows; both bounds leave tables up to their size (Adult's 31,654 and
    4,523 rows) trained exactly as before.
    """

    strategy: str = "linear"
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    encoder_lr_scale: float = 0.1
    weight_decay: float = 1e-4
    dropout: float = 0.0
    encoder_dropout: float = 0.0
    class_weight: str | None = None
    patience: int = 10
    min_delta: float = 0.0
    stage_epochs: int = 2
    probe_l2: float | None = None
    calibrate: bool = True
    epoch_rows: int = 65_536
    validation_rows: int = 32_768
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        known = STRATEGIES + (SUPERVISED,)
        if self.strategy not in known:
            raise InputError(f"Unknown fine-tuning strategy '{self.strategy}'",
                             f"Choose one of: {', '.join(known)}")
        _positive_int("epochs", self.epochs)
        _positive_int("patience", self.patience)
        _positive_int("stage_epochs", self.stage_epochs)
        _positive_int("epoch_rows", self.epoch_rows)
        _positive_int("validation_rows", self.validation_rows)
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise InputError(f"Batch size must be an integer >= 2, got {self.batch_size!r}",
                             "BatchNorm needs at least 2 rows per batch; use e.g. 256")
        for name in ("lr", "encoder_lr_scale"):
            value = getattr(self, name)
            if not value > 0:
                raise InputError(f"{name} must be > 0, got {value!r}", "Use e.g. lr 1e-3 and encoder_lr_scale 0.1")
        if not self.weight_decay >= 0 or not self.min_delta >= 0:
            raise InputError("weight_decay and min_delta must be >= 0", "Use 0 to switch them off")
        for name in ("dropout", "encoder_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise InputError(f"{name.replace('_', ' ').capitalize()} must be in [0, 1), got {value!r}",
                                 "Use e.g. 0.1, or 0 for none")
        if self.probe_l2 is not None and not self.probe_l2 >= 0:
            raise InputError(f"probe_l2 must be >= 0, got {self.probe_l2!r}",
                             "Leave it unset to choose it on validation")
        if self.class_weight not in CLASS_WEIGHTS:
            raise InputError(f"Unknown class weight '{self.class_weight}'", "Use 'balanced' or none")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{name.replace('_', ' ').capitalize()} must be a whole number > 0, got {value!r}",
                         "Use e.g. 10")
