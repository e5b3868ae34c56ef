"""A study: one table, one DatasetSpec, one fixed split and one fitted encoder, shared by every
model trained and audited in it, so that all models are compared on the same test rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.data.mapped import Mapped, write_encoded, write_encoded_columns, write_rows
from core.data.source import DataSource, open_source
from core.data.spec import DatasetSpec, PreparedData, prepare
from core.data.split import Split, make_split
from core.errors import InputError
from core.data.features import TabularEncoder
from core.files import atomic_write

if TYPE_CHECKING:
    from core.data.columns import ParquetColumns
    from core.data.proxies import ProxyFinding

STUDY_FILE = "study.json"
ENCODED_FILE = "encoded.npy"


@dataclass
class Study:
    """Everything the models of one audit share. Build it with `Study.create`."""

    source: DataSource
    data: PreparedData
    split: Split
    encoder: TabularEncoder
    matrix_path: Path | None = None  # set by map_to_disk: X is then read from this .npy file

    @classmethod
    def create(cls, source: DataSource, spec: DatasetSpec, *, label_fraction: float = 1.0, seed: int = 0,
               test_size: float = 0.2, validation_size: float = 0.1) -> Study:
        """Validate the spec, split the rows and fit the encoder on pretraining rows only
        (train + unlabelled pool: never validation or test rows)."""
        data = prepare(source.frame, spec)
        split = make_split(data.y, data.groups, test_size=test_size, validation_size=validation_size,
                           label_fraction=label_fraction, seed=seed)
        encoder = _encoder_for(data).fit(data.frame.iloc[split.pretrain][data.features])
        return cls(source=source, data=data, split=split, encoder=encoder)

    @classmethod
    def create_mapped(cls, table: ParquetColumns, spec: DatasetSpec, folder: Path,
                      keep_columns: Iterable[str] = (), *, label_fraction: float = 1.0, seed: int = 0,
                      test_size: float = 0.2, validation_size: float = 0.1) -> Study:
        """`create` then `map_to_disk(folder, keep_columns)`, made from a Parquet file read one column
        at a time (core.data.columns): the whole table is never in memory, only the columns that are
        not features (and `keep_columns`), the encoded matrix on disk, and one column being read.
        The same study, row for row and number for number, as from the table read whole."""
        data = prepare(table, spec)  # its frame: the columns that are not features
        split = make_split(data.y, data.groups, test_size=test_size, validation_size=validation_size,
                           label_fraction=label_fraction, seed=seed)
        encoder = _encoder_for(data).fit(table.rows(split.pretrain))
        from core.data.proxies import find_proxies  # scikit-learn: here, not where a page imports Study

        proxies = find_proxies(table, data.groups, columns=data.features)
        kept = set(keep_columns)
        frame = pd.DataFrame({column: data.frame[column] if column in data.frame.columns else table[column]
                              for column in table.columns if column in data.frame.columns or column in kept})
        data = replace(data, frame=frame)
        source = DataSource(name=table.name, frame=frame, sha256=table.sha256, location=str(table.path),
                            notes=table.notes)
        path = Path(folder) / ENCODED_FILE
        study = cls(source=source, data=data, split=split, encoder=encoder, matrix_path=path)
        study.__dict__["X"] = write_encoded_columns(encoder, table, path)
        study.__dict__["proxies"] = proxies
        return study

    def to_dict(self) -> dict:
        """Everything needed to rebuild this study exactly (no pickle: plain JSON)."""
        return {"dataset": self.source.name, "location": self.source.location,
                "dataset_sha256": self.source.sha256, "spec": self.spec.to_dict(),
                "split": self.split.to_dict(), "encoder": self.encoder.to_dict()}

    def save(self, folder: Path) -> Path:
        """Write `study.json` into `folder` (atomically) and return its path."""
        path = Path(folder) / STUDY_FILE
        atomic_write(path, json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, folder: Path, source: DataSource | None = None) -> Study:
        """Rebuild a saved study, reopening its data and checking that it has not changed."""
        path = Path(folder) / STUDY_FILE
        if not path.exists():
            raise InputError(f"No {STUDY_FILE} in '{folder}'",
                             "Point to the output folder of 'equiscope pretrain' or 'equiscope audit'")
        saved = json.loads(path.read_text(encoding="utf-8"))
        source = source or open_source(saved["location"])
        if source.sha256 != saved["dataset_sha256"]:
            raise InputError(f"The data at '{saved['location']}' changed since the study was made "
                             f"(sha256 {source.sha256[:12]}... instead of {saved['dataset_sha256'][:12]}...)",
                             "Restore the original file, or start a new study")
        data = prepare(source.frame, DatasetSpec.from_dict(saved["spec"]))
        return cls(source=source, data=data, split=Split.from_dict(saved["split"]),
                   encoder=TabularEncoder.from_dict(saved["encoder"]))

    def with_label_fraction(self, label_fraction: float) -> Study:
        """The same study (same train/validation/test rows) with another labelled subset of train."""
        split = make_split(self.data.y, self.data.groups, test_size=self.split.test_size,
                           validation_size=self.split.validation_size, label_fraction=label_fraction,
                           seed=self.split.seed)
        study = Study(source=self.source, data=self.data, split=split, encoder=self.encoder,
                      matrix_path=self.matrix_path)
        for computed in ("X", "proxies"):  # the same rows: what was computed (or freed) stays so
            if computed in self.__dict__:
                study.__dict__[computed] = self.__dict__[computed]
        return study

    def map_to_disk(self, folder: Path, keep_columns: Iterable[str] | None = ()) -> Path:
        """Encode every row into `folder`/encoded.npy (chunk by chunk) and read `X` from there
        from now on: a memory map, whose rows worker tasks are handed as `Mapped` handles
        (`rows`) rather than copies (core.data.mapped). The encoded matrix then stands in for
        the feature columns, so the table in memory keeps only the other columns (the target,
        the sensitive attributes, anything withheld) and `keep_columns`; None keeps every column
        (an outside model reads the raw features). Returns the file's path; deleting the file
        is the caller's (the audit's scratch folder)."""
        path = Path(folder) / ENCODED_FILE
        self.__dict__["X"] = write_encoded(self.encoder, self.data.frame[self.data.features], path)
        self.matrix_path = path
        if keep_columns is not None:
            self.proxies  # noqa: B018 - computed from the raw feature columns before they go
            kept = set(keep_columns)
            encoded = set(self.data.features) - kept
            frame = self.data.frame[[c for c in self.data.frame.columns if c not in encoded]]
            # New objects, not changes to the caller's: a dashboard may hold the same DataSource.
            self.data = replace(self.data, frame=frame)
            self.source = replace(self.source, frame=frame)
        return path

    def rows(self, rows: np.ndarray) -> np.ndarray | Mapped:
        """The encoded `rows` for a task: once the study is mapped to disk, a handle to a file of
        those rows beside the matrix (written once per set of rows), which the task's process
        reads as a memory map; else `X[rows]`."""
        if self.matrix_path is None:
            return self.X[rows]
        rows = np.asarray(rows, dtype=np.int64)
        path = self.matrix_path.with_name(f"rows-{hashlib.sha256(rows.tobytes()).hexdigest()[:16]}.npy")
        return Mapped(str(path)) if path.exists() else write_rows(self.X, rows, path)

    @property
    def spec(self) -> DatasetSpec:
        return self.data.spec

    @cached_property
    def proxies(self) -> list[ProxyFinding]:
        """Features standing in for a sensitive attribute (core.data.proxies), from the raw
        feature columns; `map_to_disk` computes them before it frees those columns."""
        from core.data.proxies import find_proxies  # scikit-learn: here, not where a page imports Study

        return find_proxies(self.data.frame[self.data.features], self.data.groups)

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


def _encoder_for(data: PreparedData) -> TabularEncoder:
    """The (unfitted) encoder of a prepared table's features, numeric or categorical by their kinds."""
    return TabularEncoder(numeric=[c for c in data.features if data.kinds[c] == "numeric"],
                          categorical=[c for c in data.features if data.kinds[c] != "numeric"])
