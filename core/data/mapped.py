"""Arrays an audit keeps on disk: the study's encoded matrix, each task's rows and the models'
test-row embeddings, as memory-mapped .npy files, and `Mapped`, the handle a worker task is
given instead of an array.

Why: an audit's tasks run in worker processes (core.run.parallel) and their arguments are
pickled to them. With arrays as arguments, a 1,000,000-row audit held a copy of the training
rows for every task it had queued (140-160 MB each) and every model's test-row embedding
(100 MB each) in the audit's process, and each worker held its own copies as well: 4.8 GB
summed over the three processes (docs/performance.md). A `Mapped` handle pickles as a path; the
process that runs the task maps the file (`resolve`), whose pages the operating system shares
between the processes that map it and reads from disk as they are used.

    X = write_encoded(encoder, frame, path)   # encode chunk by chunk into path; read-only memmap
    handle = write_rows(X, rows, rows_path)   # what a task is given: the rows' own file
    resolve(handle)                           # in the task's process: the rows, memory-mapped

The map is copy-on-write, so a task that writes into its input changes only its own pages, and
a training task streams its rows through the page cache instead of holding a private copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Rows encoded at a time when writing the matrix: bounds the encoder's temporary columns
#: (float64, one column at a time) to a few MB whatever the table's size.
CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class Mapped:
    """A .npy file that the process running a task reads as a memory map."""

    path: str

    def read(self) -> np.ndarray:
        """The array as a writeable copy-on-write memory map: its pages are read from disk as
        they are used and shared with every process reading the file; a write stays private."""
        return np.asarray(np.load(self.path, mmap_mode="c"))


def open_mapped(path: str | Path) -> np.memmap:
    """A .npy file as a read-only memory map (nothing is read until a row is used)."""
    return np.load(path, mmap_mode="r")


def _write_npy(path: str | Path, dtype: Any, shape: tuple[int, ...], fill: Callable[[np.memmap], None]) -> Path:
    """Create the .npy file `path` of `dtype` and `shape` and let `fill` write into it as a memory
    map; atomically (written beside it, then renamed), so a reader never sees half a file."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.tmp")
    try:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape)
        try:
            fill(out)
            out.flush()
        finally:
            del out
        partial.replace(path)
    except OSError as error:  # a full disk: say which file (numpy's memory map raises it without a name)
        partial.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror or str(error), error.filename or str(partial)) from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def write_array(path: str | Path, array: np.ndarray) -> Mapped:
    """Save `array` as a .npy file (atomically: a reader never sees half of it); its handle."""
    array = np.asarray(array)
    return Mapped(str(_write_npy(path, array.dtype, array.shape, lambda out: out.__setitem__(..., array))))


def write_encoded(encoder: Any, frame: pd.DataFrame, path: str | Path, chunk_rows: int = CHUNK_ROWS) -> np.memmap:
    """Encode `frame` with a fitted core.data.features.TabularEncoder into the .npy file `path`,
    `chunk_rows` rows at a time, and return it memory-mapped read-only. Row for row equal to
    encoder.transform(frame) (the encoding of a row depends on that row alone)."""
    def fill(out: np.memmap) -> None:
        for start in range(0, len(frame), chunk_rows):
            out[start:start + chunk_rows] = encoder.transform(frame.iloc[start:start + chunk_rows])

    return open_mapped(_write_npy(path, np.float32, (len(frame), int(encoder.n_features_out_)), fill))


def write_encoded_columns(encoder: Any, table: Any, path: str | Path) -> np.memmap:
    """Encode a table read one column at a time (core.data.columns.ColumnTable) into the .npy file
    `path`, one column's block at a time, so that only one raw column is ever in memory; returned
    memory-mapped read-only. Equal to write_encoded(encoder, the whole table, path): both encode
    with encoder.encode_column_into."""
    def fill(out: np.memmap) -> None:
        for column in encoder.columns_:
            encoder.encode_column_into(out, column, table[column])

    return open_mapped(_write_npy(path, np.float32, (len(table), int(encoder.n_features_out_)), fill))


def write_rows(matrix: np.ndarray, rows: np.ndarray, path: str | Path, chunk_rows: int = CHUNK_ROWS) -> Mapped:
    """`matrix[rows]` saved as its own .npy file, gathered `chunk_rows` rows at a time (so no copy
    of all of them is ever in memory); its handle, which reads as a memory map."""
    def fill(out: np.memmap) -> None:
        for start in range(0, len(rows), chunk_rows):
            out[start:start + chunk_rows] = matrix[rows[start:start + chunk_rows]]

    return Mapped(str(_write_npy(path, matrix.dtype, (len(rows), *matrix.shape[1:]), fill)))


def resolve(value: Any) -> Any:
    """What a task receives in place of `value`: a `Mapped` handle read into memory; a dataclass
    instance with `Mapped` fields, a copy with those fields read; anything else as it is."""
    if isinstance(value, Mapped):
        return value.read()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        handles = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)
                   if isinstance(getattr(value, field.name), Mapped)}
        if handles:
            return dataclasses.replace(value, **{name: handle.read() for name, handle in handles.items()})
    return value
