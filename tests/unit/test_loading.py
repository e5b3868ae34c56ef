"""Reading user files: every format, every encoding we promise, and every bad input."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.data.loading import read_table
from core.errors import InputError

CSV = "age,sex,income\n25,Male,>50K\n38,Female,<=50K\n41,Female,>50K\n"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(delimiter):
    loaded = read_table(CSV.replace(",", delimiter).encode(), "t.csv")
    assert list(loaded.frame.columns) == ["age", "sex", "income"]
    assert loaded.frame["age"].tolist() == [25, 38, 41]


@pytest.mark.parametrize("encoding, prefix", [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("latin-1", b""),
                                              ("utf-16", b""), ("utf-16-le", b""), ("cp1252", b"")])
def test_encodings_are_detected(encoding, prefix):
    text = "name,city,y\nJosé,Zürich,1\nRenée,Malmö,0\nÅsa,Köln,1\n"
    loaded = read_table(prefix + text.encode(encoding), "t.csv")
    assert loaded.frame["city"].tolist() == ["Zürich", "Malmö", "Köln"]
    assert list(loaded.frame.columns) == ["name", "city", "y"]


def test_parquet_and_excel_round_trip(tmp_path):
    frame = pd.DataFrame({"age": [20, 30, 40], "sex": ["F", "M", "F"], "y": [1, 0, 1]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    parquet = read_table(buffer.getvalue(), "t.parquet")
    assert parquet.file_format == "parquet" and parquet.frame["sex"].tolist() == ["F", "M", "F"]
    path = tmp_path / "t.xlsx"
    frame.to_excel(path, index=False)
    excel = read_table(path)
    assert excel.file_format == "excel" and excel.frame["age"].tolist() == [20, 30, 40]


def test_missing_markers_whitespace_and_infinities():
    loaded = read_table(b"a,b,c\n1, x ,?\ninf,?,2\n3,NA,3\n", "t.csv")
    frame = loaded.frame
    assert frame["b"].tolist()[0] == "x"
    assert frame["b"].isna().tolist() == [False, True, True]
    assert np.isnan(frame["a"][1]) and any("infinite" in note for note in loaded.notes)
    assert frame["c"].isna().tolist() == [True, False, False]


def test_duplicate_and_empty_column_names_are_renamed_with_a_note():
    loaded = read_table(b"a,a,,b\n1,2,3,4\n5,6,7,8\n", "t.csv")
    assert len(set(loaded.frame.columns)) == 4
    assert any("more than once" in note for note in loaded.notes)
    assert any("no name" in note for note in loaded.notes)


@pytest.mark.parametrize("data, name, fragment", [
    (b"", "empty.csv", "is empty"),
    (b"   \n\n", "blank.csv", "is empty"),
    (bytes(range(256)) * 20, "noise.csv", "binary"),
    (b"\x89PNG\r\n\x1a\n" + bytes(200), "img.csv", "binary"),
    (b"a;b;c\n", "header.csv", "no data rows"),
    (b"just one column\n1\n2\n", "one.csv", "single column"),
    (b"a,b\n1,2\n3,4,5,6\n", "ragged.csv", "consistent"),
    (b"PAR1garbage", "bad.parquet", "Parquet"),
    (b"not excel", "bad.xlsx", "Excel"),
    (b"PK\x03\x04garbage", "bad.xlsx", "Excel"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "old.xls", ".xls"),
    (b"\x80\x04\x95" + bytes(50), "model.pkl", "pickle"),
])
def test_bad_files_raise_a_specific_input_error(data, name, fragment):
    with pytest.raises(InputError) as caught:
        read_table(data, name)
    assert fragment.lower() in str(caught.value).lower()


def test_size_limit_is_enforced_with_the_sizes_in_the_message(tmp_path):
    with pytest.raises(InputError, match=r"limit is 1.0 KB"):
        read_table(b"a,b\n" + b"1,2\n" * 1000, "big.csv", max_bytes=1024)
    path = tmp_path / "big.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 1000)
    with pytest.raises(InputError, match="limit"):
        read_table(path, max_bytes=1024)


def test_missing_path_and_folder_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="folder"):
        read_table(tmp_path)


def test_sha256_identifies_the_bytes():
    first = read_table(CSV.encode(), "a.csv")
    second = read_table(CSV.encode(), "b.csv")
    third = read_table(CSV.replace("25", "26").encode(), "a.csv")
    assert first.sha256 == second.sha256 != third.sha256
