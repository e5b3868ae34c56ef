"""Feature layout and batched view generation (corruption, masking, noise) for tables.

A table arrives encoded as a float matrix X (n, d): standardised numerics, missing
indicators and one-hot blocks. `FeatureLayout` says which original column each of the d
features comes from and which features are standardised numerics.

Corruption works per original column c, for every row i of a batch independently:
    m[i, c]  ~ Bernoulli(rate)                   column c of row i is corrupted
    r[i, c]  ~ Uniform{0, ..., n-1}              the donor row for that column
    x~[i, j] = x[r[i, col(j)], j]  if m[i, col(j)]  else  x[i, j]
so a corrupted column takes *all* its features (a whole one-hot block, a value and its
missing indicator) from one donor row: one-hot blocks are never mixed. Drawing the donor
uniformly from the batch samples each column from its empirical marginal (the batch is
the sample; SCARF draws from the training set's marginal, which the batch estimates).
Optional Gaussian noise applies to numeric features only:
    x~[i, j] += sigma * eps[i, j],  eps ~ N(0, 1),  j numeric.

All draws are batched tensor ops on x's device with an explicit `torch.Generator` on the
same device: no per-row Python, no global RNG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.errors import InputError


@dataclass(frozen=True)
class FeatureLayout:
    """column_of_feature: int64 (d,) index of the original column of each feature;
    is_numeric: bool (d,) True where the feature is a standardised numeric value."""

    column_of_feature: torch.Tensor
    is_numeric: torch.Tensor

    def __post_init__(self) -> None:
        col = torch.as_tensor(self.column_of_feature, dtype=torch.int64)
        num = torch.as_tensor(self.is_numeric, dtype=torch.bool)
        if col.ndim != 1 or num.ndim != 1 or col.shape != num.shape or col.numel() == 0:
            raise InputError(
                f"feature layout needs two 1-d arrays of the same length d > 0, got "
                f"{tuple(col.shape)} and {tuple(num.shape)}",
                "Build it from TabularEncoder.feature_to_column_ and numeric_features_")
        if int(col.min()) < 0:
            raise InputError("feature layout has a negative column index",
                             "Column indices start at 0")
        object.__setattr__(self, "column_of_feature", col)
        object.__setattr__(self, "is_numeric", num)

    @property
    def n_features(self) -> int:
        return int(self.column_of_feature.numel())

    @property
    def n_columns(self) -> int:
        return int(self.column_of_feature.max()) + 1

    @classmethod
    def from_arrays(cls, feature_to_column: Any, numeric_features: Any) -> FeatureLayout:
        return cls(torch.as_tensor(np.asarray(feature_to_column, dtype=np.int64)),
                   torch.as_tensor(np.asarray(numeric_features, dtype=bool)))

    @classmethod
    def from_encoder(cls, encoder: Any) -> FeatureLayout:
        """From a fitted `core.data.features.TabularEncoder`."""
        return cls.from_arrays(encoder.feature_to_column_, encoder.numeric_features_)

    @classmethod
    def all_numeric(cls, d: int) -> FeatureLayout:
        """Every feature is its own numeric column (plain numeric matrices)."""
        return cls(torch.arange(d), torch.ones(d, dtype=torch.bool))

    def to(self, device: torch.device | str) -> FeatureLayout:
        return FeatureLayout(self.column_of_feature.to(device), self.is_numeric.to(device))

    def to_dict(self) -> dict[str, list]:
        return {"column_of_feature": self.column_of_feature.tolist(),
                "is_numeric": self.is_numeric.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list]) -> FeatureLayout:
        return cls.from_arrays(data["column_of_feature"], data["is_numeric"])


def column_mask(n: int, layout: FeatureLayout, rate: float,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(row, column) Bernoulli(rate) draws: (mask_columns (n, C), mask_features (n, d))."""
    device = layout.column_of_feature.device
    m_col = torch.rand((n, layout.n_columns), generator=generator, device=device) < rate
    return m_col, m_col[:, layout.column_of_feature]


def swap_corrupt(x: torch.Tensor, layout: FeatureLayout, rate: float,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each column of each row, with probability `rate`, by the same column of a
    uniformly drawn row of the batch. Returns (x_tilde, mask (n, d) bool)."""
    n = x.shape[0]
    _, mask = column_mask(n, layout, rate, generator)
    donors = torch.randint(0, n, (n, layout.n_columns), generator=generator, device=x.device)
    donor_rows = donors[:, layout.column_of_feature]          # (n, d), constant per column
    x_donor = torch.gather(x, 0, donor_rows)                  # x_donor[i, j] = x[donor_rows[i, j], j]
    return torch.where(mask, x_donor, x), mask


def numeric_noise(x: torch.Tensor, layout: FeatureLayout, std: float,
                  generator: torch.Generator) -> torch.Tensor:
    """x + std * N(0, 1) on numeric features only; no draw at all when std == 0."""
    if std <= 0:
        return x
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + std * eps * layout.is_numeric.to(x.dtype)


def corrupted_view(x: torch.Tensor, layout: FeatureLayout, rate: float, noise_std: float,
                   generator: torch.Generator) -> torch.Tensor:
    """One random view: per-column swap corruption at `rate`, then numeric Gaussian noise."""
    x_tilde, _ = swap_corrupt(x, layout, rate, generator)
    return numeric_noise(x_tilde, layout, noise_std, generator)
