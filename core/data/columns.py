"""A Parquet table read one column at a time: how an audit makes its study from a table larger
than memory (core.data.study.Study.create_mapped).

    table = open_columns(path)      # ParquetColumns, or None: not Parquet, or not readable by column
    table.columns                   # the column names, cleaned as read_table cleans them
    table["age"]                    # one column, cleaned as read_table cleans it
    table.read(exclude=features)    # the other columns, as a DataFrame
    table.rows(pretrain)            # the same table on some rows (what the encoder is fitted on)

Every column is cleaned by the function read_table uses (core.data.loading.clean_column), which
looks at that column alone, so each column equals the one of `read_table(path).frame`; the study
made from it is the one made from the whole table (tests/unit/test_columns.py). At most one
column is in memory at a time, besides what the caller keeps.

A file is read whole instead (`open_columns` returns None) where columns cannot be told apart
by name (duplicate names) or where pandas stored an index in it (read_table turns that into
columns).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from core.data.loading import LARGEST_UPLOAD_BYTES, check_shape, check_size, clean_column, clean_column_names
from core.errors import InputError

#: Bytes hashed at a time for the file's sha256.
HASH_BLOCK = 1 << 20


class ColumnTable(Protocol):
    """What `core.data.spec.prepare` and the encoder need of a table: names and one column at a time."""

    columns: list[str]

    def __getitem__(self, column: str) -> pd.Series: ...

    def __len__(self) -> int: ...

    def read(self, exclude: Sequence[str] = ()) -> pd.DataFrame: ...


class ParquetColumns:
    """A Parquet file's columns, each read from the file when asked for (module docstring).
    Build it with `open_columns`; `notes` are read_table's notes for the same file."""

    def __init__(self, path: Path, parquet, names: dict[str, str], notes: list[str], sha256: str) -> None:
        self.path, self.name = path, path.name
        self._parquet, self._names = parquet, names
        self.columns = list(names)
        self.notes, self.sha256 = notes, sha256

    def __len__(self) -> int:
        return int(self._parquet.metadata.num_rows)

    def __getitem__(self, column: str) -> pd.Series:
        return self._read(column, [])

    def _read(self, column: str, notes: list[str]) -> pd.Series:
        raw = self._names[column]
        try:
            part = self._parquet.read(columns=[raw], use_threads=True, use_pandas_metadata=True)
            series = part.to_pandas(split_blocks=True, self_destruct=True)[raw]
        except Exception as error:  # pyarrow raises several types for unreadable columns
            raise InputError(f"'{self.name}' holds a column Equiscope cannot read ('{column}': "
                             f"{str(error).splitlines()[0][:200] if str(error) else type(error).__name__})",
                             "Save plain numeric and text columns, or use CSV") from None
        return clean_column(series.rename(column).reset_index(drop=True), column, notes)

    def read(self, exclude: Sequence[str] = ()) -> pd.DataFrame:
        """Every column but `exclude`, in the table's order, as one DataFrame."""
        left_out = set(exclude)
        return pd.DataFrame({column: self[column] for column in self.columns if column not in left_out})

    def rows(self, rows: np.ndarray) -> RowsOf:
        return RowsOf(self, rows)


class RowsOf:
    """A table's columns on `rows` only (in that order), one column at a time: what
    TabularEncoder.fit reads (it asks for each of its columns, nothing else)."""

    def __init__(self, table: ColumnTable, rows: np.ndarray) -> None:
        self.table, self.row_positions = table, np.asarray(rows, dtype=np.int64)
        self.columns = table.columns

    def __getitem__(self, column: str) -> pd.Series:
        return self.table[column].iloc[self.row_positions].reset_index(drop=True)


def open_columns(path: str | Path, max_bytes: int = LARGEST_UPLOAD_BYTES) -> ParquetColumns | None:
    """The Parquet file at `path` read one column at a time, or None where it is to be read whole
    (not a Parquet file, not a file, duplicate column names, a stored pandas index). Refuses, as
    read_table does, a file over the size limit, an unreadable one and a table no audit can use;
    every column is read once here, so a column that cannot be read stops the audit before it starts."""
    import pyarrow.parquet as pq

    path = Path(path).expanduser()
    if not path.is_file():
        return None
    with path.open("rb") as file:
        if file.read(4) != b"PAR1":
            return None
    check_size(path.stat().st_size, True, path.name, max_bytes)
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except Exception as error:  # pyarrow raises several types for corrupt files
        raise InputError(f"'{path.name}' is not a readable Parquet file ({str(error).splitlines()[0][:200]})",
                         "Export the table again, or save it as CSV") from None
    raw_names = list(schema.names)
    stored_index = any(isinstance(index, str) for index in (schema.pandas_metadata or {}).get("index_columns", []))
    if len(set(raw_names)) != len(raw_names) or stored_index:
        return None
    notes: list[str] = []
    names = dict(zip(clean_column_names(raw_names, notes), raw_names))
    check_shape(list(names), int(parquet.metadata.num_rows), path.name)
    table = ParquetColumns(path.resolve(), parquet, names, notes, _sha256(path))
    for column in table.columns:  # read_table's notes, in its order; an unreadable column stops here
        table._read(column, notes)
    return table


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
