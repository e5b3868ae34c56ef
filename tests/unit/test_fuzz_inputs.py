"""Bad input, proven at scale: property-based tests of `read_table` and `prepare`.

Property: every input either loads (and the frame is sane: unique, non-empty string column
names, no infinite numbers, at least one row and two columns) or raises `InputError` whose
message names the file and whose hint says what to do. Nothing else may escape. Then
`prepare` on loaded frames with random specs gives `InputError` or a consistent
`PreparedData`.

Profiles (environment variable EQUISCOPE_FUZZ):
- `ci` (default): the example counts in `EXAMPLES`, derandomized (the same cases on every
  run, so CI never flakes), `deadline=None` (2 shared cores make timings noisy);
- `deep`: 20 times as many examples, random each run, for a local hunt.
Each test counts the cases it ran and how they ended; the counts are printed at the end of
the module (see docs/reliability.md for the numbers of a full run).

Bugs these properties found are kept as explicit `@example`s (see each test).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter

import numpy as np
import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.data import DatasetSpec, PreparedData, prepare, read_table
from core.data.loading import MISSING_MARKERS
from core.errors import InputError

PROFILE = os.environ.get("EQUISCOPE_FUZZ", "ci")
SCALE = {"ci": 1, "deep": 20}[PROFILE]
settings.register_profile("equiscope-ci", deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
settings.register_profile("equiscope-deep", deadline=None, derandomize=False, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
BASE = settings.get_profile(f"equiscope-{PROFILE}")

EXAMPLES = {"random_bytes": 300, "truncated": 200, "csv_text": 250, "round_trip": 120, "frames": 100,
            "prepare": 150}
"""Examples per property in the `ci` profile (times SCALE)."""

COUNTS: dict[str, Counter] = {name: Counter() for name in EXAMPLES}
REASONS: Counter = Counter()


def fuzz(name: str):
    return settings(BASE, max_examples=EXAMPLES[name] * SCALE)


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    total = sum(sum(c.values()) for c in COUNTS.values())
    lines = [f"fuzz profile '{PROFILE}': {total} cases"]
    lines += [f"  {name}: {sum(c.values())} cases ({', '.join(f'{k} {v}' for k, v in sorted(c.items()))})"
              for name, c in COUNTS.items() if c]
    lines += [f"    {v} {k}" for k, v in REASONS.most_common(40)]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + "\n".join(lines))


# -- the property -----------------------------------------------------------------------------

def load_or_refuse(data: bytes, name: str, counter: Counter) -> pd.DataFrame | None:
    """read_table either gives a sane frame or an InputError naming the file; nothing else."""
    try:
        loaded = read_table(data, name)
    except InputError as error:
        assert error.message.strip() and error.hint.strip(), repr(error)
        assert name in error.message, f"message does not name the file: {error}"
        counter["refused"] += 1
        REASONS[error.message.replace(name, "NAME")[:60]] += 1
        return None
    assert_sane(loaded.frame)
    assert len(loaded.sha256) == 64 and loaded.file_format in ("csv", "parquet", "excel")
    counter[f"loaded {loaded.file_format}"] += 1
    return loaded.frame


def assert_sane(frame: pd.DataFrame) -> None:
    columns = list(frame.columns)
    assert all(isinstance(c, str) and c.strip() == c and c for c in columns), columns
    assert len(set(columns)) == len(columns), columns
    assert frame.shape[0] >= 1 and frame.shape[1] >= 2, frame.shape
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
    for column in columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            assert not np.isinf(values).any(), f"infinite value left in {column!r}"
        elif series.dtype == object:
            texts = [v for v in series if isinstance(v, str)]
            assert all(v == v.strip() and v not in MISSING_MARKERS for v in texts), column


# -- inputs -----------------------------------------------------------------------------------

NAMES = st.sampled_from(["data.csv", "data.tsv", "data.txt", "data.parquet", "data.xlsx", "data", "DATA.CSV",
                         "x.pq", "table.xlsm", "weird name (1).csv"])
TEXT_CELLS = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "Infinity", "1e308", "1e309", "-1e999", "9" * 40, "NaN", "?", "NA", "",
                     " ", "null", "True", "false", "0x1F", "1,5", "=1+1", "@SUM(A1)", "x\ny", 'say "hi"',
                     "a;b|c\td", "Zürich", "Åsa", "€", "日本", "\u2028", "\x85", "é" * 3]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=12),
)
HEADER_NAMES = st.one_of(st.sampled_from(["", " ", "a", "a", "a.1", "Unnamed: 0", "nan", "None", "1", "column_1",
                                          "e-mail", "sex", "y", "年齢"]),
                         st.text(max_size=8))
DELIMITERS = st.sampled_from([",", ";", "\t", "|"])
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be"])


def write_csv(rows: list[list[str]], delimiter: str, encoding: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode(encoding, errors="replace")


def sample_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"age": rng.integers(18, 80, 40), "sex": rng.choice(["F", "M"], 40),
                         "income": rng.normal(3e4, 1e4, 40).round(2), "approved": rng.choice(["yes", "no"], 40),
                         "note": ["=HYPERLINK(\"x\")", "Zürich", "", "日本"] * 10})


def valid_files() -> dict[str, bytes]:
    frame = sample_frame()
    files = {"t.csv": frame.to_csv(index=False).encode(),
             "t16.csv": frame.to_csv(index=False, sep=";").encode("utf-16")}
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    files["t.parquet"] = buffer.getvalue()
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False)
    files["t.xlsx"] = buffer.getvalue()
    return files


VALID = valid_files()


# -- properties over read_table ---------------------------------------------------------------

@fuzz("random_bytes")
@given(data=st.binary(min_size=0, max_size=3000), name=NAMES)
@example(data=b"PAR1", name="data.csv")
@example(data=b"PK\x03\x04junk", name="data.xlsx")
@example(data=b"\x80\x04\x95junk", name="data.csv")
@example(data=b"\xff\xfe\x00\xd8", name="data.csv")
@example(data=b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", name="data.xlsx")
def test_random_bytes_load_or_raise_input_error(data, name):
    load_or_refuse(data, name, COUNTS["random_bytes"])


@fuzz("truncated")
@given(which=st.sampled_from(sorted(VALID)), cut=st.floats(0.0, 1.0, exclude_max=True),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), max_size=3))
def test_truncated_or_corrupted_files_load_or_raise_input_error(which, cut, flips):
    """A valid CSV / UTF-16 CSV / Parquet / Excel file cut at a random point, some bytes changed."""
    data = bytearray(VALID[which][:max(1, int(len(VALID[which]) * cut))])
    for where, value in flips:
        data[int(len(data) * where)] = value
    load_or_refuse(bytes(data), which, COUNTS["truncated"])


@fuzz("csv_text")
@given(header=st.lists(HEADER_NAMES, min_size=1, max_size=6),
       rows=st.lists(st.lists(TEXT_CELLS, min_size=1, max_size=7), min_size=1, max_size=6),
       delimiter=DELIMITERS, encoding=ENCODINGS, bom=st.booleans())
@example(header=["nan", "a"], rows=[["1e308", "9" * 30], ["", "-inf"], ["inf", "9" * 30]],
         delimiter="|", encoding="utf-8", bom=False)  # text column of numbers with -inf: was left infinite
def test_random_csv_text_loads_sanely_or_raises_input_error(header, rows, delimiter, encoding, bom):
    """Random headers (duplicate, empty), ragged rows of mixed cells, any delimiter and encoding."""
    data = write_csv([header, *rows], delimiter, encoding)
    if bom and encoding in ("utf-8", "latin-1", "cp1252"):
        data = b"\xef\xbb\xbf" + data
    load_or_refuse(data, "fuzz.csv", COUNTS["csv_text"])


SIMPLE_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
SIMPLE_CELL = st.one_of(st.integers(-10**9, 10**9),
                        st.floats(-1e12, 1e12, allow_nan=False).map(lambda v: round(v, 6)),
                        st.from_regex(r"t_[a-z]{1,6}", fullmatch=True))


@st.composite
def simple_tables(draw) -> tuple[list[str], list[list]]:
    names = draw(st.lists(SIMPLE_NAME, min_size=2, max_size=8, unique=True))
    kinds = [draw(st.sampled_from(["int", "float", "text"])) for _ in names]
    n = draw(st.integers(1, 12))
    cells = {"int": st.integers(-10**9, 10**9), "text": st.from_regex(r"t_[a-z]{1,6}", fullmatch=True),
             "float": st.floats(-1e12, 1e12, allow_nan=False).map(lambda v: round(v, 6))}
    rows = [[draw(cells[kind]) for kind in kinds] for _ in range(n)]
    return names, rows


@fuzz("round_trip")
@given(table=simple_tables(), delimiter=DELIMITERS, encoding=ENCODINGS)
@example(table=(["a", "b"], [[1, 2]]), delimiter=",", encoding="utf-8")
def test_well_formed_csv_round_trips_in_every_delimiter_and_encoding(table, delimiter, encoding):
    """Loading correctly means the right values under the right names, not just no crash."""
    names, rows = table
    data = write_csv([names, *[[str(v) for v in row] for row in rows]], delimiter, encoding)
    frame = read_table(data, "simple.csv").frame
    COUNTS["round_trip"]["loaded csv"] += 1
    assert list(frame.columns) == names
    assert frame.shape == (len(rows), len(names))
    for position, name in enumerate(names):
        expected = [row[position] for row in rows]
        got = frame[name].tolist()
        if isinstance(expected[0], str):
            assert got == expected
        else:
            assert np.allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float), rtol=1e-12)


def test_more_fields_than_the_header_keep_values_in_their_columns():
    """Regression: pandas turned the first column into the index and shifted every value left."""
    loaded = read_table(b"a,b\n1,2,3\n4,5\n", "extra.csv")
    assert loaded.frame.to_dict("list") == {"a": [1, 4], "b": [2, 5]}
    assert any("more fields than the header" in note for note in loaded.notes)
    trailing = read_table(b"a,b\n1,2,\n3,4,\n", "trailing.csv").frame
    assert trailing.to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_a_saved_pandas_index_in_parquet_is_kept_as_a_column():
    """Regression: a Parquet file written with a named pandas index lost that column."""
    frame = pd.DataFrame({"income": [1, 2, 3], "sex": ["F", "M", "F"]}, index=pd.Index([7, 8, 9], name="person"))
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    loaded = read_table(buffer.getvalue(), "indexed.parquet").frame
    assert list(loaded.columns) == ["person", "income", "sex"]
    assert loaded["person"].tolist() == [7, 8, 9]


def test_duplicate_column_names_in_parquet_are_renamed_not_refused():
    """Regression: pyarrow's dataset reader refused the file ('Multiple matches for FieldRef')."""
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4]), pa.array(["x", "y"])], names=["a", "a", ""])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    loaded = read_table(buffer.getvalue(), "dup.parquet")
    assert list(loaded.frame.columns) == ["a", "a_2", "column_3"]
    assert loaded.frame["a_2"].tolist() == [3, 4]


# -- Parquet and Excel built from random frames -------------------------------------------------

FRAME_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                         st.floats(allow_nan=True, allow_infinity=True),
                         st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=10),
                         st.sampled_from(["inf", "-Infinity", "1e400", "=cmd|' /C calc'!A0", "NA", "  x  "]))


@st.composite
def random_frames(draw) -> tuple[list[object], list[list[object]]]:
    names = draw(st.lists(st.one_of(HEADER_NAMES, st.integers(-3, 3)), min_size=1, max_size=5))
    n = draw(st.integers(0, 6) | st.integers(1, 6))
    columns = []
    for _ in names:
        mode = draw(st.sampled_from(["mixed", "float", "int", "text"]))
        if mode == "float":
            cell = st.floats(allow_nan=True, allow_infinity=True)
        elif mode == "int":
            cell = st.integers(-2**53, 2**53)
        elif mode == "text":
            cell = st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]),
                                                max_size=10))
        else:
            cell = FRAME_VALUES
        columns.append([draw(cell) for _ in range(n)])
    return names, columns


def parquet_bytes(names: list[object], columns: list[list[object]]) -> bytes | None:
    arrays = []
    for values in columns:
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=[str(n) for n in names]), buffer)
    return buffer.getvalue()


def excel_bytes(names: list[object], columns: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    def cell(value):  # what a workbook can hold: no infinities or NaN (text then), no control characters
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value
    sheet.append([cell(n) for n in names])
    for row in zip(*columns):
        sheet.append([cell(v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@fuzz("frames")
@given(frame=random_frames(), file_format=st.sampled_from(["parquet", "excel"]))
def test_random_parquet_and_excel_tables_load_sanely_or_raise_input_error(frame, file_format):
    """Duplicate, empty and numeric column names; mixed types; inf and NaN; extreme integers."""
    names, columns = frame
    if file_format == "parquet":
        data, name = parquet_bytes(names, columns), "fuzz.parquet"
    else:
        data, name = excel_bytes(names, columns), "fuzz.xlsx"
    load_or_refuse(data, name, COUNTS["frames"])


# -- the named hard cases -----------------------------------------------------------------------

def test_a_million_character_cell_loads():
    data = b"id_text,y\n" + b"x" * 1_000_000 + b",1\nshort,0\n"
    frame = read_table(data, "big-cell.csv").frame
    assert len(frame.loc[0, "id_text"]) == 1_000_000 and frame["y"].tolist() == [1, 0]


def test_ten_thousand_columns_and_one_row_load():
    header = ",".join(f"c{i}" for i in range(10_000))
    frame = read_table(f"{header}\n{','.join(['1'] * 10_000)}\n".encode(), "wide.csv").frame
    assert frame.shape == (1, 10_000) and frame.iloc[0].sum() == 10_000
    assert_sane(frame)


@pytest.mark.parametrize(("data", "fragment"), [
    (b"a,b\n", "no data rows"),
    (b"only_one_column\n1\n2\n", "single column"),
    (b"\xef\xbb\xbf", "has no columns"),
    (b"a,b\n1,\x002\n", "binary file"),
    (b'a,b\n"1,2\n', "not a consistent comma-separated table"),
])
def test_named_bad_csvs_raise_specific_messages(data, fragment):
    with pytest.raises(InputError, match=fragment):
        read_table(data, "bad.csv")


# -- prepare on loaded frames with random specs -------------------------------------------------

COLUMN_KINDS = ["binary_int", "yes_no", "category", "numeric", "age", "email", "name", "empty", "constant",
                "mixed", "extreme", "id"]


def build_column(kind: str, n: int, rng: np.random.Generator) -> list[object]:
    if kind == "binary_int":
        return rng.integers(0, 2, n).tolist()
    if kind == "yes_no":
        return rng.choice(["yes", "no", ""], n, p=[0.45, 0.45, 0.1]).tolist()
    if kind == "category":
        return rng.choice(["North", "South", "East", "?"], n).tolist()
    if kind == "numeric":
        return rng.normal(0, 1, n).round(4).tolist()
    if kind == "age":
        return rng.integers(18, 90, n).tolist()
    if kind == "email":
        return [f"person{i}@example.org" for i in range(n)]
    if kind == "name":  # distinct full names (the content rule needs 20 distinct to call them names)
        first = ["Ana", "Bo", "Carl", "Dita", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jana"]
        last = ["Silva", "Chen", "Meyer", "Novak", "Okafor", "Petrov", "Quist", "Rossi", "Sato", "Tanaka"]
        return [f"{first[i % 10]} {last[(i // 10 + i) % 10]}" for i in range(n)]
    if kind == "empty":
        return [""] * n
    if kind == "constant":
        return ["same"] * n
    if kind == "mixed":
        return rng.choice(["1", "2.5", "x", "inf", "-1e999", ""], n).tolist()
    if kind == "extreme":
        return rng.choice(["1e308", "-1e308", "5e-324", "0", "9" * 25], n).tolist()
    return list(range(n))


@st.composite
def tables_and_specs(draw) -> tuple[bytes, DatasetSpec]:
    """A table of random column kinds, and either a plausible spec (target and attribute of
    fitting kinds, enough rows, the rest random) or a wholly random one."""
    kinds = [draw(st.sampled_from(["binary_int", "yes_no"])), draw(st.sampled_from(["category", "age", "yes_no"]))]
    kinds += draw(st.lists(st.sampled_from(COLUMN_KINDS), max_size=5))
    names = [f"{kind}_{i}" if kind not in ("email", "name") else f"{kind}{i}" for i, kind in enumerate(kinds)]
    plausible = draw(st.booleans())
    n = draw(st.sampled_from([60, 120] if plausible else [1, 5, 24, 60, 120]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frame = pd.DataFrame({name: build_column(kind, n, rng) for name, kind in zip(names, kinds)})
    pool = names + ["not_a_column"]
    others = st.lists(st.sampled_from(pool), max_size=len(pool)).map(tuple)
    if plausible:
        target, sensitive = names[0], (names[1], *draw(st.lists(st.sampled_from(names[2:] or names[1:]), max_size=1)))
        features = draw(st.none() | others)
        positive = draw(st.none() | st.sampled_from(["1", "yes", "no", "0"]))
    else:
        target = draw(st.sampled_from(pool))
        sensitive = tuple(draw(st.lists(st.sampled_from(pool), max_size=3)))
        features = draw(st.none() | others)
        positive = draw(st.none() | st.sampled_from(["1", "yes", "no", "North", "0", "1.0", "absent"]))
    bins = {}
    if sensitive and draw(st.booleans()):
        bins = {sensitive[0]: tuple(draw(st.lists(st.one_of(
            st.floats(allow_nan=True, allow_infinity=True), st.integers(-100, 100), st.just("x")), max_size=4)))}
    spec = DatasetSpec(target=target, sensitive=sensitive, positive_label=positive, features=features, bins=bins,
                       include_pii=draw(st.booleans()), min_group_size=draw(st.sampled_from([0, 1, 30])))
    return frame.to_csv(index=False).encode(), spec


@fuzz("prepare")
@given(case=tables_and_specs())
@example(case=(b"s,id_0,x\n" + b"".join(f"{i % 2},{i},{i % 3}\n".encode() for i in range(60)),
               DatasetSpec(target="s", sensitive=("id_0",), bins={"id_0": ()})))  # was IndexError
@example(case=(b"s,age,x\n" + b"".join(f"{i % 2},{i},{i % 3}\n".encode() for i in range(60)),
               DatasetSpec(target="s", sensitive=("age",), bins={"age": (float("inf"),)})))  # was ValueError
@example(case=(b"s,age,x\n" + b"".join(f"{i % 2},{i},{i % 3}\n".encode() for i in range(60)),
               DatasetSpec(target="s", sensitive=("age",), bins={"age": (40.0, 20.0)})))  # was ValueError
def test_prepare_gives_input_error_or_consistent_prepared_data(case):
    data, spec = case
    counter = COUNTS["prepare"]
    frame = load_or_refuse(data, "people.csv", Counter())
    if frame is None:
        counter["table refused"] += 1
        return
    try:
        prepared = prepare(frame, spec)
    except InputError as error:
        assert error.message.strip() and error.hint.strip(), repr(error)
        counter["spec refused"] += 1
        REASONS["prepare: " + error.message[:50]] += 1
        return
    counter["prepared"] += 1
    assert isinstance(prepared, PreparedData)
    y = prepared.y
    assert y.shape == (len(frame),)
    labelled = y[~np.isnan(y)]
    assert set(np.unique(labelled)) <= {0.0, 1.0}
    assert min((labelled == 1).sum(), (labelled == 0).sum()) >= 10
    assert list(prepared.groups.columns) == list(spec.sensitive) and len(prepared.groups) == len(frame)
    for attribute in spec.sensitive:
        assert prepared.groups[attribute].nunique() >= 2
        assert prepared.groups[attribute].map(type).eq(str).all()
    assert prepared.features and spec.target not in prepared.features
    assert set(prepared.features) <= set(frame.columns)
    if spec.features is not None:
        assert set(prepared.features) <= set(spec.features)
    if not spec.include_pii:
        assert not set(prepared.withheld_columns) & set(prepared.features)
        assert not any(c.startswith(("email", "name")) for c in prepared.features)
