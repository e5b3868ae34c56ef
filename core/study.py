"""A study: one table, one DatasetSpec, one fixed split and one fitted encoder, shared by every
model trained and audited in it, so that all models are compared on the same test rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from core.data.source import DataSource
from core.data.spec import DatasetSpec, PreparedData, prepare
from core.data.split import Split, make_split
from core.features import TabularEncoder


@dataclass
class Study:
    """Everything the models of one audit share. Build it with `Study.create`."""

    source: DataSource
    data: PreparedData
    split: Split
    encoder: TabularEncoder

    @classmethod
    def create(cls, source: DataSource, spec: DatasetSpec, *, label_fraction: float = 1.0, seed: int = 0,
               test_size: float = 0.2, validation_size: float = 0.1) -> Study:
        """Validate the spec, split the rows and fit the encoder on pretraining rows only
        (train + unlabelled pool: never validation or test rows)."""
        data = prepare(source.frame, spec)
        split = make_split(data.y, data.groups, test_size=test_size, validation_size=validation_size,
                           label_fraction=label_fraction, seed=seed)
        numeric = [c for c in data.features if data.kinds[c] == "numeric"]
        categorical = [c for c in data.features if data.kinds[c] != "numeric"]
        encoder = TabularEncoder(numeric=numeric, categorical=categorical)
        encoder.fit(data.frame.iloc[split.pretrain][data.features])
        return cls(source=source, data=data, split=split, encoder=encoder)

    @property
    def spec(self) -> DatasetSpec:
        return self.data.spec

    @cached_property
    def X(self) -> np.ndarray:
        """Every row encoded, float32 (n_rows, n_features_out)."""
        return self.encoder.transform(self.data.frame[self.data.features])

    def labels(self, rows: np.ndarray) -> np.ndarray:
        """0/1 labels of labelled rows (int64)."""
        y = self.data.y[rows]
        if np.isnan(y).any():
            raise ValueError("labels() asked for unlabelled rows")
        return y.astype(np.int64)

    def groups(self, rows: np.ndarray) -> pd.DataFrame:
        """Sensitive groups (text) of the given rows, index reset."""
        return self.data.groups.iloc[rows].reset_index(drop=True)

    def row_ids(self, rows: np.ndarray) -> np.ndarray:
        """Stable row identifiers: the row's position in the loaded table."""
        return np.asarray(rows, dtype=np.int64)
