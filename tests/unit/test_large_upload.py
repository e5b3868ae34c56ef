"""Large tables (issue 22): chunked reading gives the table of one read, progress is reported,
and each format's size limit refuses a larger file with a specific message (exit 2 in the CLI)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.cli import main as cli
from core.data import loading
from core.data.loading import read_table, size_limit
from core.data.profile import profile_columns
from core.errors import InputError


def awkward_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Columns whose type a chunk could read differently from the whole file: integers that meet a
    decimal late, a column missing only late, yes/no with a late gap, text with missing markers."""
    rng = np.random.default_rng(seed)
    late_decimal = rng.integers(0, 50, n).astype(object)
    late_decimal[-3] = 2.5
    late_missing = rng.integers(0, 9, n).astype(object)
    late_missing[-1] = "?"
    flags = rng.choice(["True", "False"], n).astype(object)
    flags[-2] = ""
    return pd.DataFrame({"age": rng.integers(18, 80, n), "late_decimal": late_decimal, "late_missing": late_missing,
                         "flag": flags, "score": np.round(rng.normal(0, 1, n), 3),
                         "city": rng.choice([" Paris", "Lyon ", "NA", "Nice"], n), "approved": rng.choice(["yes", "no"], n)})


def read_in_chunks(monkeypatch, data: bytes, name: str, rows: int, progress=None) -> pd.DataFrame:
    monkeypatch.setattr(loading, "CSV_CHUNK_ROWS", rows)
    monkeypatch.setattr(loading, "PARQUET_BATCH_ROWS", rows)
    return read_table(data, name, progress=progress).frame


def test_csv_read_in_chunks_is_the_table_of_one_read(monkeypatch):
    data = awkward_frame().to_csv(index=False).encode()
    whole = read_in_chunks(monkeypatch, data, "t.csv", 10**9)
    reports = []
    chunked = read_in_chunks(monkeypatch, data, "t.csv", 37, progress=lambda f, m: reports.append((f, m)))
    pd.testing.assert_frame_equal(chunked, whole)
    assert whole["late_decimal"].dtype == float and whole["late_missing"].isna().sum() == 1
    rows = [m for _, m in reports if "rows so far" in m]
    assert len(rows) == 11 and rows[-1].endswith("400 rows so far")  # ceil(400 / 37) chunks
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [m for _, m in reports if m.startswith("Cleaning")][-1] == "Cleaning column 7 of 7: 'approved'"


def test_a_column_that_turns_to_text_in_a_later_chunk_is_read_as_one_read_reads_it(monkeypatch):
    """'1.50' in a column that is text further down stays '1.50' (a chunk of numbers alone read 1.5)."""
    frame = pd.DataFrame({"code": ["1.50"] * 60 + ["A7"] * 5, "y": ["yes", "no"] * 32 + ["yes"]})
    data = frame.to_csv(index=False).encode()
    chunked = read_in_chunks(monkeypatch, data, "codes.csv", 20)
    assert chunked["code"].tolist() == ["1.50"] * 60 + ["A7"] * 5
    pd.testing.assert_frame_equal(chunked, read_in_chunks(monkeypatch, data, "codes.csv", 10**9))


def test_parquet_read_in_batches_is_the_table_of_one_read(monkeypatch):
    frame = awkward_frame().astype({"late_decimal": float, "late_missing": str, "flag": str})
    frame["when"] = pd.date_range("2020-01-01", periods=len(frame), freq="h")
    frame["group"] = pd.Categorical(frame["city"])
    frame.index = pd.Index(np.random.default_rng(1).permutation(len(frame)) + 1000, name="row_id")  # kept as a column
    buffer = io.BytesIO()
    frame.to_parquet(buffer, row_group_size=150)
    data = buffer.getvalue()
    reports = []
    batched = read_in_chunks(monkeypatch, data, "t.parquet", 64, progress=lambda f, m: reports.append(m))
    plain = loading._clean(pq.ParquetFile(io.BytesIO(data)).read().to_pandas().reset_index(), "t.parquet", [])
    pd.testing.assert_frame_equal(batched, plain)
    assert batched.columns[0] == "row_id" and pd.api.types.is_datetime64_any_dtype(batched["when"])
    assert "Reading 't.parquet': 400 of 400 rows" in reports and len([m for m in reports if " of 400 rows" in m]) >= 7


def test_the_profile_reports_each_column():
    reports = []
    profile_columns(awkward_frame(50), pii_columns={}, progress=lambda f, m: reports.append((f, m)))
    assert [m for _, m in reports][:2] == ["Profiling column 1 of 7: 'age'", "Profiling column 2 of 7: 'late_decimal'"]
    assert len(reports) == 7 and reports[-1][0] == pytest.approx(6 / 7)


@pytest.fixture
def small_limits(monkeypatch):
    """CSV and Excel up to 1,000 bytes, Parquet up to 20,000, as the real 200 MB and 500 MB."""
    monkeypatch.setattr(loading, "MAX_UPLOAD_BYTES", 1000)
    monkeypatch.setattr(loading, "MAX_PARQUET_BYTES", 20_000)


def test_each_format_has_its_limit_and_a_csv_over_it_is_told_parquet_takes_more(small_limits, tmp_path):
    frame = awkward_frame(150)[["age", "score", "city", "approved"]]
    csv_data = frame.to_csv(index=False).encode()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    parquet_data = buffer.getvalue()
    assert len(csv_data) > 1000 and 1000 < len(parquet_data) < 20_000
    assert len(read_table(parquet_data, "t.parquet").frame) == 150  # larger than CSV's limit, within Parquet's
    path = tmp_path / "t.csv"
    path.write_bytes(csv_data)
    for source in (csv_data, path):  # bytes (the dashboard) and a path (the CLI) alike
        with pytest.raises(InputError) as caught:
            read_table(source, "t.csv")
        assert "the limit is 1000 bytes for CSV and Excel files (19.5 KB for Parquet)" in caught.value.message
        assert "Save the table as Parquet" in caught.value.hint
    assert size_limit(True) == 20_000 and size_limit(False) == 1000 and size_limit(True, max_bytes=500) == 500
    with pytest.raises(InputError) as caught:
        read_table(parquet_data * 20, "huge.parquet")  # PAR1 first: judged by Parquet's limit
    assert caught.value.message.endswith("the limit is 19.5 KB")


def test_the_cli_refuses_a_file_over_its_limit_with_exit_2_and_one_line(small_limits, tmp_path, capsys):
    path = tmp_path / "loans.csv"
    path.write_bytes(awkward_frame(150).to_csv(index=False).encode())
    assert cli.main(["inspect", "--data", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'loans.csv' is" in err[0] and "for CSV and Excel files" in err[0]


def test_streamlit_accepts_what_the_loader_accepts():
    from core.cli import serve

    assert serve._max_upload_bytes() == loading.LARGEST_UPLOAD_BYTES == loading.MAX_PARQUET_BYTES == 500 * 2**20
    assert loading.MAX_UPLOAD_BYTES == 200 * 2**20
