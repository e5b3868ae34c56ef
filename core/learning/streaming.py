"""Training rows that do not fit in memory: a source of numpy chunks, and how batches are
cut from it.

A `ChunkSource` has `n_rows`, `n_features` and `chunks(epoch) -> Iterator[np.ndarray]`
(float32 (m, d) pieces that together cover every row once per epoch, e.g. Parquet row
groups). core.learning.pretrain turns it into batches with a shuffle buffer:

    buffer = leftover rows of the previous chunk ++ this chunk   (on the training device)
    perm   = randperm(len(buffer), generator)
    emit buffer[perm[k B : (k+1) B]] for every full batch; keep the rest as leftover

so every epoch yields floor(n_rows / B) batches, rows are shuffled within (chunk +
leftover) and the chunk order is shuffled per epoch by the source. Only one chunk plus
one batch of leftover lives on the device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow.parquet as pq
import torch


@runtime_checkable
class ChunkSource(Protocol):
    n_rows: int
    n_features: int

    def chunks(self, epoch: int) -> Iterator[np.ndarray]: ...


class ArrayChunks:
    """An in-memory matrix served in chunks (tests, and a reference for other sources)."""

    def __init__(self, X: np.ndarray, chunk_rows: int = 65536, shuffle_chunks: bool = True,
                 random_state: int = 0) -> None:
        self.X = np.asarray(X, dtype=np.float32)
        self.chunk_rows = chunk_rows
        self.shuffle_chunks = shuffle_chunks
        self.random_state = random_state
        self.n_rows, self.n_features = self.X.shape

    def chunks(self, epoch: int) -> Iterator[np.ndarray]:
        starts = np.arange(0, self.n_rows, self.chunk_rows)
        if self.shuffle_chunks:
            starts = np.random.default_rng((self.random_state, epoch)).permutation(starts)
        for start in starts:
            yield self.X[start:start + self.chunk_rows]


class ParquetChunks:
    """Row groups of a Parquet file of already-encoded float features (or raw columns plus
    a `transform(pyarrow.Table) -> np.ndarray`, e.g. a fitted TabularEncoder's)."""

    def __init__(self, path: Path | str, columns: list[str] | None = None,
                 transform: Callable[..., np.ndarray] | None = None,
                 shuffle_row_groups: bool = True, random_state: int = 0) -> None:
        self.path = Path(path)
        self.columns = columns
        self.transform = transform
        self.shuffle_row_groups = shuffle_row_groups
        self.random_state = random_state
        meta = pq.ParquetFile(self.path).metadata
        self.n_rows = meta.num_rows
        self.n_row_groups = meta.num_row_groups
        self.n_features = int(self._read(pq.ParquetFile(self.path), 0).shape[1])

    def _read(self, file, index: int) -> np.ndarray:
        table = file.read_row_group(index, columns=self.columns)
        if self.transform is not None:
            return np.asarray(self.transform(table), dtype=np.float32)
        return np.column_stack([c.to_numpy(zero_copy_only=False) for c in table.columns]
                               ).astype(np.float32, copy=False)

    def chunks(self, epoch: int) -> Iterator[np.ndarray]:
        order = np.arange(self.n_row_groups)
        if self.shuffle_row_groups:
            order = np.random.default_rng((self.random_state, epoch)).permutation(order)
        file = pq.ParquetFile(self.path)
        for index in order:
            yield self._read(file, int(index))


def stream_batches(source: ChunkSource, epoch: int, batch_size: int,
                   generator: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
    """Shuffled full batches from a chunk source (see the module docstring)."""
    leftover = torch.empty((0, source.n_features), dtype=torch.float32, device=device)
    for chunk in source.chunks(epoch):
        chunk_t = torch.as_tensor(np.ascontiguousarray(chunk, dtype=np.float32)).to(device)
        buffer = torch.cat([leftover, chunk_t]) if leftover.numel() else chunk_t
        perm = torch.randperm(buffer.shape[0], generator=generator, device=device)
        n_full = buffer.shape[0] // batch_size
        for k in range(n_full):
            yield buffer[perm[k * batch_size:(k + 1) * batch_size]]
        leftover = buffer[perm[n_full * batch_size:]]


def array_batches(X: torch.Tensor, batch_size: int, generator: torch.Generator
                  ) -> Iterator[torch.Tensor]:
    """The whole matrix on the device, one seeded permutation per epoch, full batches only."""
    perm = torch.randperm(X.shape[0], generator=generator, device=X.device)
    for k in range(X.shape[0] // batch_size):
        yield X[perm[k * batch_size:(k + 1) * batch_size]]
