"""A study made from a Parquet file read one column at a time (issue 22, tables larger than
memory) is the study made from the table read whole: the same notes, split, encoder, encoded
matrix, proxies and kept columns, on a table whose columns a careless reader would get wrong
(integers meeting a decimal, text numbers, missing markers, infinities, unnamed columns, personal
data, a pandas categorical), with the file in several row groups."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.data.columns import open_columns
from core.data.source import open_source
from core.data.spec import DatasetSpec
from core.data.study import Study
from core.errors import InputError


def awkward_table(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n)
    income = np.round(rng.lognormal(10, 1, n), 2)
    income[rng.random(n) < 0.05] = np.inf  # read as missing, with a note
    income[rng.random(n) < 0.05] = np.nan
    text_numbers = rng.integers(0, 40, n).astype(str).astype(object)
    text_numbers[rng.random(n) < 0.05] = "?"  # a missing marker: the column stays numeric
    job = rng.choice([" clerk", "nurse ", "driver", "chef", "NA"], n).astype(object)  # stripped, "NA" missing
    return pd.DataFrame({
        "sex": sex,
        "age": rng.integers(18, 90, n),
        "income": income,
        "hours": text_numbers,
        "job": job,
        "grade": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "email": [f"person{i}@example.org" for i in range(n)],  # personal data: withheld
        "near_sex": np.where(sex == "female", rng.random(n) < 0.9, rng.random(n) < 0.1),  # a proxy
        "Unnamed: 9": rng.normal(size=n),
        "approved": np.where(rng.random(n) < 0.3 + 0.2 * (sex == "male"), "yes", "no"),
    })


def write_parquet(frame: pd.DataFrame, path, row_group_size: int = 256):
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size)
    return path


SPEC = DatasetSpec(target="approved", sensitive=("sex", "age"), positive_label="yes")


def test_the_study_read_by_column_is_the_study_read_whole(tmp_path):
    path = write_parquet(awkward_table(), tmp_path / "awkward.parquet")
    (tmp_path / "whole").mkdir()
    (tmp_path / "by_column").mkdir()
    whole = Study.create(open_source(path), SPEC, seed=3)
    whole.map_to_disk(tmp_path / "whole", keep_columns=["job"])
    table = open_columns(path)
    assert table is not None and len(table) == 1200
    streamed = Study.create_mapped(table, SPEC, tmp_path / "by_column", keep_columns=["job"], seed=3)

    assert streamed.to_dict() == whole.to_dict()  # location, sha256, spec, split, encoder
    assert streamed.source.notes == whole.source.notes and any("infinite" in n for n in streamed.source.notes)
    assert streamed.data.notes == whole.data.notes and streamed.data.warnings == whole.data.warnings
    assert streamed.data.features == whole.data.features and streamed.data.kinds == whole.data.kinds
    assert [f.column for f in streamed.data.pii] == [f.column for f in whole.data.pii] == ["email"]
    np.testing.assert_array_equal(streamed.data.y, whole.data.y)
    pd.testing.assert_frame_equal(streamed.data.groups, whole.data.groups)
    assert streamed.data.group_order == whole.data.group_order
    np.testing.assert_array_equal(np.asarray(streamed.X), np.asarray(whole.X))
    assert [asdict(p) for p in streamed.proxies] == [asdict(p) for p in whole.proxies]
    assert any(p.feature == "near_sex" for p in streamed.proxies)
    # What stays in memory: the columns that are not features, and the one asked for.
    pd.testing.assert_frame_equal(streamed.data.frame, whole.data.frame)
    assert "income" not in streamed.data.frame.columns and "job" in streamed.data.frame.columns
    test_rows = streamed.split.test
    np.testing.assert_array_equal(streamed.rows(test_rows).read(), whole.rows(test_rows).read())


def test_files_it_cannot_read_by_column_are_read_whole_and_bad_ones_refused(tmp_path):
    frame = awkward_table(100)
    csv = tmp_path / "table.csv"
    frame.to_csv(csv, index=False)
    assert open_columns(csv) is None  # not Parquet
    assert open_columns(tmp_path / "missing.parquet") is None  # open_source says what is wrong
    indexed = tmp_path / "indexed.parquet"
    frame.set_index("email").to_parquet(indexed)  # a stored index: read_table makes it a column
    assert open_columns(indexed) is None
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\0" * 64)
    with pytest.raises(InputError, match="not a readable Parquet file"):
        open_columns(broken)
    one = write_parquet(frame[["approved"]], tmp_path / "one.parquet")
    with pytest.raises(InputError, match="single column"):
        open_columns(one)
