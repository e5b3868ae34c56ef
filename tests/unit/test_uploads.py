"""Uploads are stored inside the workspace under a sanitised, content-addressed name."""

from __future__ import annotations

import hashlib

import pytest

from core.errors import InputError
from core.workspace.uploads import MAX_NAME_CHARS, safe_file_name, save_upload

CSV = b"age,sex,y\n30,F,1\n40,M,0\n"


@pytest.mark.parametrize(("raw", "expected"), [
    ("loans.csv", "loans.csv"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system32\\config.xlsx", "config.xlsx"),
    ("/abs/path/data.parquet", "data.parquet"),
    ("..", "upload"),
    ("", "upload"),
    (".hidden.csv", "hidden.csv"),
    ("my data (final) v2.csv", "my_data_final_v2.csv"),
    ("naïve–résumé.csv", "na_ve_r_sum_.csv"),
    ("ﬁle.csv", "file.csv"),  # NFKC turns the ligature into plain letters
    ("data.csv\x00.exe", "data.csv_.exe"),
])
def test_safe_file_name_keeps_only_a_plain_last_component(raw, expected):
    assert safe_file_name(raw) == expected


def test_long_names_are_cut_keeping_the_extension():
    name = safe_file_name("x" * 500 + ".xlsx")
    assert len(name) == MAX_NAME_CHARS
    assert name.endswith(".xlsx")


def test_save_upload_is_content_addressed_inside_the_workspace(tmp_path):
    path = save_upload(tmp_path, CSV, "../../evil/loans.csv")
    digest = hashlib.sha256(CSV).hexdigest()
    assert path == (tmp_path / "uploads" / f"{digest[:16]}-loans.csv").resolve()
    assert path.read_bytes() == CSV
    assert not (tmp_path.parent / "evil").exists()


def test_same_upload_twice_is_stored_once_and_different_content_never_overwrites(tmp_path):
    first = save_upload(tmp_path, CSV, "data.csv")
    again = save_upload(tmp_path, CSV, "data.csv")
    other = save_upload(tmp_path, CSV + b"50,F,1\n", "data.csv")
    assert first == again
    assert other != first
    assert first.read_bytes() == CSV
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == sorted([first.name, other.name])


def test_too_large_or_empty_uploads_are_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(InputError, match="the limit is"):
        save_upload(tmp_path, CSV, "data.csv", max_bytes=10)
    with pytest.raises(InputError, match="is empty"):
        save_upload(tmp_path, b"", "data.csv")
    assert not (tmp_path / "uploads").exists()
