"""One fixed split of a table's rows for a whole study.

Labelled rows are divided into train / validation / test, stratified by label x (all
sensitive attributes together): within each stratum the rows are shuffled with the seed and
`round(m * test_size)` go to test, `round(m * validation_size)` to validation, the rest to
train. Strata too small for a share (a group of one) stay in train, so every row is used.
Rows with a missing target form the unlabelled pool. `labelled_train` is a stratified
subsample of train holding `label_fraction` of it (at least one row per stratum that has
any), for few-label experiments; pretraining sees every train row and the pool, never the
validation or test rows' labels — and never test rows at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from core.errors import InputError


@dataclass(frozen=True)
class Split:
    """Row positions (into the prepared table) of each part of a study."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    unlabelled: np.ndarray
    labelled_train: np.ndarray
    label_fraction: float
    seed: int
    test_size: float = 0.2
    validation_size: float = 0.1

    @property
    def pretrain(self) -> np.ndarray:
        """Rows SSL pretraining may use, without labels: train plus the unlabelled pool."""
        return np.sort(np.concatenate([self.train, self.unlabelled]))

    def to_dict(self) -> dict:
        return {"train": self.train.tolist(), "validation": self.validation.tolist(),
                "test": self.test.tolist(), "unlabelled": self.unlabelled.tolist(),
                "labelled_train": self.labelled_train.tolist(),
                "label_fraction": self.label_fraction, "seed": self.seed,
                "test_size": self.test_size, "validation_size": self.validation_size}

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        arrays = {key: np.asarray(data[key], dtype=np.int64)
                  for key in ("train", "validation", "test", "unlabelled", "labelled_train")}
        return cls(**arrays, label_fraction=float(data["label_fraction"]), seed=int(data["seed"]),
                   test_size=float(data.get("test_size", 0.2)), validation_size=float(data.get("validation_size", 0.1)))


def make_split(y: np.ndarray, groups: pd.DataFrame, *, test_size: float = 0.2,
               validation_size: float = 0.1, label_fraction: float = 1.0, seed: int = 0) -> Split:
    """Split rows as described in the module docstring. `y` is 1 / 0 / NaN per row."""
    if not 0 < label_fraction <= 1:
        raise InputError(f"Label fraction {label_fraction} is outside (0, 1]",
                         "Give a fraction such as 0.1 for 10% of the labels, or 1 for all")
    if not (0 < test_size < 1 and 0 <= validation_size < 1 and test_size + validation_size < 1):
        raise InputError("Test and validation sizes must be fractions that sum to less than 1",
                         "Use for example test 0.2 and validation 0.1")
    rng = np.random.default_rng(seed)
    labelled = np.flatnonzero(~np.isnan(y))
    strata = _strata(y, groups)
    test, validation, train = [], [], []
    for key in sorted(set(strata[labelled])):
        members = labelled[strata[labelled] == key]
        members = members[rng.permutation(len(members))]
        n_test = int(round(len(members) * test_size))
        n_validation = int(round(len(members) * validation_size))
        if n_test + n_validation >= len(members):  # tiny stratum: keep it for training
            n_test = n_validation = 0
        test.append(members[:n_test])
        validation.append(members[n_test:n_test + n_validation])
        train.append(members[n_test + n_validation:])
    parts = [np.sort(np.concatenate(p)).astype(np.int64) for p in (train, validation, test)]
    for name, rows in zip(("training", "validation", "test"), parts):
        if validation_size == 0 and name == "validation":
            continue
        classes = set(y[rows].astype(int).tolist())
        if classes != {0, 1}:
            raise InputError(f"The {name} rows hold only one class of the target",
                             "Add labelled rows of both classes (at least a few dozen of each)")
    labelled_train = _subsample(parts[0], strata, label_fraction, rng)
    return Split(train=parts[0], validation=parts[1], test=parts[2],
                 unlabelled=np.flatnonzero(np.isnan(y)).astype(np.int64),
                 labelled_train=labelled_train, label_fraction=float(label_fraction), seed=seed,
                 test_size=test_size, validation_size=validation_size)


def redraw_labelled_train(split: Split, y: np.ndarray, groups: pd.DataFrame, *, seed: int) -> Split:
    """The same split with `labelled_train` drawn again from train with `seed` (same fraction,
    same strata): each training replicate of an audit sees its own labelled subsample, while
    train, validation and test stay the rows every replicate is judged on. With a label
    fraction of 1 every train row is labelled, so nothing changes."""
    if split.label_fraction >= 1:
        return split
    labelled = _subsample(split.train, _strata(y, groups), split.label_fraction, np.random.default_rng(seed))
    return replace(split, labelled_train=labelled)


def _strata(y: np.ndarray, groups: pd.DataFrame) -> np.ndarray:
    label = np.where(np.isnan(y), "u", y.astype(str))
    key = pd.Series(label)
    for column in groups.columns:
        key = key + "|" + groups[column].astype(str).to_numpy()
    return key.to_numpy()


def _subsample(train: np.ndarray, strata: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    if fraction >= 1:
        return train
    chosen = []
    for key in sorted(set(strata[train])):
        members = train[strata[train] == key]
        n = max(1, int(round(len(members) * fraction)))
        chosen.append(rng.choice(members, size=n, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def bounded_rows(n: int, limit: int, seed: int, stream: int = 1) -> np.ndarray:
    """Every row position up to `limit` rows, else a sorted uniform draw of `limit` of them from
    their own generator (seed, stream), so a caller's other draws from `seed` are the same
    either way. Fine-tuning's epochs and early stopping use stream 1, the classical baselines'
    settings search stream 2."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, stream]).choice(n, size=limit, replace=False))
