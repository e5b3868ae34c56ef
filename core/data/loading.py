"""Read a user's table (CSV, Parquet, Excel) into a DataFrame, or refuse with a clear reason.

Every failure a user can cause raises `InputError`. The loader never unpickles anything: CSV
is parsed as text, Parquet by pyarrow, Excel (.xlsx) by openpyxl.

CSV handling, in order:
1. encoding: a byte-order mark decides (UTF-8, UTF-16 LE/BE); otherwise strict UTF-8, then
   UTF-16 without BOM (detected by NUL bytes at alternating positions), then Windows-1252,
   then Latin-1 (which decodes any byte string, so it is last);
2. binary content (NUL or many control characters after decoding) is refused;
3. delimiter: `csv.Sniffer` among `, ; TAB |`, falling back to the candidate that splits the
   first lines into the most consistent number of fields;
4. rows: parsed in chunks of `CSV_CHUNK_ROWS` so a large file can report how far it is (the
   chunks give the same table as one parse: see `_concat_chunks`).

Parquet is decoded in record batches of `PARQUET_BATCH_ROWS` for the same reason. `progress`,
where given, is called as `progress(fraction done, what is happening)`; core never draws it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""Largest CSV or Excel file accepted (200 MB). Bigger tables should be sampled, or saved as Parquet."""
MAX_PARQUET_BYTES = 500 * 1024 * 1024
"""Largest Parquet file accepted (500 MB; the 1,000,000-row, 50-column benchmark table fits). Measured:
a 498 MB file (1,290,000 rows x 50 columns) read and profiled at a peak of 2.0 GB RSS, within the 4 GB
goal (docs/performance.md, "Large uploads (issue 22)"). CSV stays at 200 MB: its text is decoded whole."""
LARGEST_UPLOAD_BYTES = max(MAX_UPLOAD_BYTES, MAX_PARQUET_BYTES)
"""The largest file of any format: what the dashboard's uploader and `equiscope serve` accept."""

Progress = Callable[[float, str], None]
"""`progress(fraction, message)`: how far a long read or profile is (0..1) and what it is doing."""

CSV_CHUNK_ROWS = 50_000
"""Rows parsed per CSV chunk: a progress report every ~0.5 s on one core, few enough concatenations."""
PARQUET_BATCH_ROWS = 65_536
"""Rows decoded per Parquet record batch (pyarrow's default batch size), one progress report each."""
READ_SHARE = 0.4
"""The share of the progress bar for parsing; cleaning the text columns takes the rest (at 500,000
rows of CSV: 0.2 s of parsing, 4 s of cleaning text cells)."""

MISSING_MARKERS = ["?", "", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A"]
"""Cell values read as missing. '?' is how UCI datasets such as Adult mark missing values."""

DELIMITERS = [",", ";", "\t", "|"]
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SUPPORTED_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".xlsm"}


@dataclass
class LoadedTable:
    """A table read from a file, with what a report needs to say where it came from."""

    frame: pd.DataFrame
    name: str
    sha256: str
    file_format: str
    notes: list[str] = field(default_factory=list)


def read_table(data: bytes | Path | str, name: str | None = None,
               max_bytes: int = LARGEST_UPLOAD_BYTES, progress: Progress | None = None) -> LoadedTable:
    """Read CSV, Parquet or Excel bytes (or a file path) into a cleaned DataFrame.

    `name` is the file name used for messages and to pick the format by extension; the
    content's magic bytes take precedence over the extension. The file may be as large as its
    format's limit (`size_limit`) and `max_bytes`, whichever is smaller. `progress` hears the
    rows read so far (CSV and Parquet; an Excel workbook is read in one go).
    """
    report = progress or _no_progress
    if isinstance(data, (str, Path)):
        path = Path(data)
        name = name or path.name
        data = _read_file_bytes(path, max_bytes)
    name = name or "upload"
    check_size(len(data), data[:4] == b"PAR1", name, max_bytes)
    if len(data) == 0 or not data.strip():
        raise InputError(f"'{name}' is empty", "Choose a file that holds a table with a header row")

    file_format = _detect_format(data, name)
    notes: list[str] = []
    report(0.0, f"Reading '{name}' ({_human_size(len(data))})")
    parsing = _part_of(report, 0.0, READ_SHARE)
    if file_format == "parquet":
        frame = _read_parquet(data, name, parsing)
    elif file_format == "excel":
        frame = _read_excel(data, name, notes)
    else:
        frame = _read_csv(data, name, notes, parsing)
    frame = _clean(frame, name, notes, _part_of(report, READ_SHARE, 1.0 - READ_SHARE))
    report(1.0, f"Read {len(frame):,} rows × {frame.shape[1]} columns")
    return LoadedTable(frame=frame, name=name, sha256=hashlib.sha256(data).hexdigest(),
                       file_format=file_format, notes=notes)


def _no_progress(fraction: float, message: str) -> None:
    """The progress callback of a caller that does not listen."""


def _part_of(report: Progress, start: float, width: float) -> Progress:
    """A step's own 0..1 progress as the share [start, start + width] of the whole."""
    return lambda fraction, message: report(start + width * fraction, message)


def _read_file_bytes(path: Path, max_bytes: int) -> bytes:
    if not path.exists():
        raise InputError(f"File '{path}' does not exist",
                         "Check the path, or run 'equiscope datasets' for the bundled names")
    if path.is_dir():
        raise InputError(f"'{path}' is a folder, not a file", "Give the path of a CSV, Parquet or Excel file")
    try:
        with path.open("rb") as file:  # the magic bytes say Parquet before a large file is read
            check_size(path.stat().st_size, file.read(4) == b"PAR1", path.name, max_bytes)
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"Cannot read '{path}': {error.strerror}", "Check the file's permissions") from None


def size_limit(is_parquet: bool, max_bytes: int = LARGEST_UPLOAD_BYTES) -> int:
    """The largest file accepted: the format's limit (Parquet MAX_PARQUET_BYTES, CSV and Excel
    MAX_UPLOAD_BYTES), or `max_bytes` where the caller allows less."""
    return min(MAX_PARQUET_BYTES if is_parquet else MAX_UPLOAD_BYTES, max_bytes)


def check_size(size: int, is_parquet: bool, name: str, max_bytes: int) -> None:
    limit = size_limit(is_parquet, max_bytes)
    if size <= limit:
        return
    if is_parquet or limit < MAX_UPLOAD_BYTES:
        raise InputError(f"'{name}' is {_human_size(size)}; the limit is {_human_size(limit)}",
                         "Sample the rows (or drop unused columns) and load the smaller file")
    raise InputError(
        f"'{name}' is {_human_size(size)}; the limit is {_human_size(limit)} for CSV and Excel files "
        f"({_human_size(size_limit(True, max_bytes))} for Parquet)",
        "Save the table as Parquet (smaller, and read faster), or sample the rows or drop unused columns")


def _human_size(n_bytes: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _detect_format(data: bytes, name: str) -> str:
    suffix = Path(name).suffix.lower()
    if data[:4] == b"PAR1":
        return "parquet"
    if data[:4] == b"PK\x03\x04":
        if suffix in {".xlsx", ".xlsm", ""} or suffix not in SUPPORTED_SUFFIXES:
            return "excel"
        raise InputError(f"'{name}' is a zip archive, not a table",
                         "Unzip it and load the CSV, Parquet or Excel file inside")
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise InputError(f"'{name}' is an old Excel .xls file, which Equiscope cannot read",
                         "Save it as .xlsx or CSV and load that")
    if suffix in {".parquet", ".pq"}:
        raise InputError(f"'{name}' has a Parquet extension but is not a Parquet file",
                         "Export the table again as Parquet, or save it as CSV")
    if suffix in {".xlsx", ".xlsm"}:
        raise InputError(f"'{name}' has an Excel extension but is not an .xlsx workbook",
                         "Open it in a spreadsheet program and save it as .xlsx or CSV")
    if data[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        raise InputError(f"'{name}' looks like a Python pickle, which Equiscope never opens",
                         "Export the table as CSV or Parquet")
    return "csv"


def _read_parquet(data: bytes, name: str, report: Progress) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # ParquetFile, not pq.read_table: the dataset reader refuses duplicate column names.
        # Batch by batch (the same table as ParquetFile.read) so a large file reports its rows.
        parquet = pq.ParquetFile(io.BytesIO(data))
        n_rows, batches, done = parquet.metadata.num_rows, [], 0
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, use_threads=True):
            batches.append(batch)
            done += batch.num_rows
            report(done / max(n_rows, 1), f"Reading '{name}': {done:,} of {n_rows:,} rows")
        table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
        batches.clear()  # the table holds the only references, so the conversion below can free them
    except Exception as error:  # pyarrow raises several types for corrupt files
        raise InputError(f"'{name}' is not a readable Parquet file ({_first_line(error)})",
                         "Export the table again, or save it as CSV") from None
    try:
        # self_destruct frees each Arrow column once converted: the peak holds about one table, not two.
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
    except Exception as error:
        raise InputError(f"'{name}' holds column types Equiscope cannot read ({_first_line(error)})",
                         "Save plain numeric and text columns, or use CSV") from None
    if not isinstance(frame.index, pd.RangeIndex):  # a saved pandas index is data: keep it as columns
        frame = frame.reset_index(allow_duplicates=True)
    return frame


def _read_excel(data: bytes, name: str, notes: list[str]) -> pd.DataFrame:
    try:
        sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, engine="openpyxl",
                               na_values=MISSING_MARKERS, keep_default_na=True)
    except Exception as error:  # openpyxl / zipfile raise many types for broken workbooks
        raise InputError(f"'{name}' is not a readable Excel workbook ({_first_line(error)})",
                         "Open it in a spreadsheet program and save it as .xlsx or CSV") from None
    non_empty = {sheet: frame for sheet, frame in sheets.items() if not frame.empty}
    if not non_empty:
        raise InputError(f"'{name}' has no sheet with data", "Put the table on the first sheet with a header row")
    first = next(iter(non_empty))
    if len(sheets) > 1:
        notes.append(f"Used sheet '{first}' of {len(sheets)} sheets.")
    return non_empty[first]


def _read_csv(data: bytes, name: str, notes: list[str], report: Progress) -> pd.DataFrame:
    text, encoding = _decode(data, name)
    if encoding not in ("utf-8", "ascii"):
        notes.append(f"Read the file as {encoding}.")
    delimiter = _sniff_delimiter(text)
    # index_col=False: rows with more fields than the header must not turn the first
    # column into the index (that shifts every value one column to the left).
    options = dict(sep=delimiter, na_values=MISSING_MARKERS, keep_default_na=True, skipinitialspace=True,
                   on_bad_lines="error", index_col=False)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            buffer = io.StringIO(text)
            chunks: list[pd.DataFrame] = []
            rows = 0
            with pd.read_csv(buffer, chunksize=CSV_CHUNK_ROWS, **options) as reader:
                for chunk in reader:
                    chunks.append(chunk)
                    rows += len(chunk)
                    # The parser reads the text ahead in blocks: its position is the share done.
                    report(buffer.tell() / max(len(text), 1), f"Reading '{name}': {rows:,} rows so far")
            frame = _concat_chunks(chunks)
            if frame is None:  # the chunks disagree on a column's type: parse it whole, as one read would
                frame = pd.read_csv(io.StringIO(text), low_memory=False, **options)
        if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
            notes.append("Some rows have more fields than the header; the extra fields were ignored.")
    except pd.errors.EmptyDataError:
        raise InputError(f"'{name}' has no columns", "Load a file with a header row") from None
    except (pd.errors.ParserError, csv.Error, ValueError) as error:
        raise InputError(
            f"'{name}' is not a consistent {_DELIMITER_NAMES[delimiter]}-separated table "
            f"({_first_line(error)})",
            "Check that every row has as many fields as the header and that quotes are closed") from None
    if delimiter != ",":
        notes.append(f"Columns are separated by {_DELIMITER_NAMES[delimiter]}s.")
    return frame


def _concat_chunks(chunks: list[pd.DataFrame]) -> pd.DataFrame | None:
    """The chunks as one table, or None where that table could differ from one parse of the file.

    pandas infers each chunk's column types on its own. Chunks whose types agree, or are all
    signed integers and floats (an integer chunk and a chunk with a decimal or a missing value
    join as floats, as one parse reads them), concatenate to exactly the table of one parse. A column that is
    numbers in one chunk and text in another would keep "1.50" as the number 1.5 where one
    parse keeps the text: that file is parsed again whole.
    """
    if len(chunks) <= 1:
        return chunks[0] if chunks else None  # no chunk: a header without rows, which one parse reads
    for column_index in range(chunks[0].shape[1]):
        dtypes = {chunk.dtypes.iloc[column_index] for chunk in chunks}
        if len(dtypes) > 1 and not all(dtype.kind in "if" for dtype in dtypes):
            return None
    return pd.concat(chunks, ignore_index=True)


def _decode(data: bytes, name: str) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        text, encoding = data[3:].decode("utf-8", errors="replace"), "utf-8 with BOM"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text, encoding = _decode_utf16(data, name), "utf-16"
    elif _looks_like_utf16(data):
        text, encoding = _decode_utf16(data, name), "utf-16"
    else:
        for encoding in ("utf-8", "cp1252", "latin-1"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    sample = text[:65536]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n")
    if "\x00" in sample or control > 0.01 * max(len(sample), 1):
        raise InputError(f"'{name}' looks like a binary file, not a table",
                         "Load a CSV, Parquet or .xlsx file")
    return text, encoding


def _looks_like_utf16(data: bytes) -> bool:
    head = data[:4096]
    if len(head) < 4:
        return False
    zeros_even = head[0::2].count(0) / len(head[0::2])
    zeros_odd = head[1::2].count(0) / len(head[1::2])
    return max(zeros_even, zeros_odd) > 0.4 and min(zeros_even, zeros_odd) < 0.05


def _decode_utf16(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else
                           ("utf-16-le" if data[1:2] == b"\x00" else "utf-16-be"))
    except UnicodeDecodeError:
        raise InputError(f"'{name}' looks like UTF-16 text but does not decode",
                         "Save the file as UTF-8 CSV") from None


def _sniff_delimiter(text: str) -> str:
    lines = [line for line in text[:65536].splitlines() if line.strip()][:50]
    if not lines:
        return ","
    sample = "\n".join(lines)
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed in DELIMITERS and _fields_per_line(lines, sniffed) > 1:
        return sniffed
    # Fallback: the delimiter that gives the same number (> 1) of fields on most lines.
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        counts = [len(next(csv.reader([line], delimiter=delimiter))) for line in lines]
        modal = max(set(counts), key=counts.count)
        score = (counts.count(modal) / len(counts) if modal > 1 else 0.0, modal)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _fields_per_line(lines: list[str], delimiter: str) -> int:
    return len(next(csv.reader([lines[0]], delimiter=delimiter)))


def _clean(frame: pd.DataFrame, name: str, notes: list[str],
           report: Progress = _no_progress) -> pd.DataFrame:
    """Normalise column names and cell values so later steps see one consistent table."""
    # No copy: the frame is the reader's own, and pandas' copy-on-write keeps writes to it local
    # (a copy was a second whole table at the peak of a large upload).
    frame.columns = clean_column_names(list(frame.columns), notes)
    check_shape(list(frame.columns), len(frame), name)

    for position, column in enumerate(frame.columns):
        report(position / frame.shape[1], f"Cleaning column {position + 1} of {frame.shape[1]}: '{column}'")
        original = frame[column]
        cleaned = clean_column(original, column, notes)
        if cleaned is not original:
            frame[column] = cleaned
    return frame.reset_index(drop=True)


def check_shape(columns: list[str], n_rows: int, name: str) -> None:
    """Refuse a table no audit can use: no columns, a single column (a wrong delimiter), no rows."""
    if not columns:
        raise InputError(f"'{name}' has no columns", "Load a file with a header row")
    if len(columns) == 1 and n_rows > 0:
        header = str(columns[0])
        raise InputError(
            f"'{name}' has a single column ('{header[:60]}'); an audit needs a target and features",
            "Check the delimiter: Equiscope reads comma, semicolon, tab and pipe separated files")
    if n_rows == 0:
        raise InputError(f"'{name}' has a header but no data rows", "Load a file with at least one data row")


def clean_column(series: pd.Series, column: str, notes: list[str]) -> pd.Series:
    """One column as every later step sees it: text stripped, missing markers missing, a text column
    of numbers numeric, infinite numbers missing (each with a note). Depends on this column alone,
    so a table read one column at a time (core.data.columns) is cleaned exactly as one read whole."""
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        # Text first: a text column of numbers becomes numeric here and may hold "inf".
        series = _clean_text_column(series)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            series = series.where(~np.isinf(values))
            notes.append(f"Column '{column}': {n_inf} infinite value(s) read as missing.")
    return series


def clean_column_names(columns: list[object], notes: list[str]) -> list[str]:
    cleaned: list[str] = []
    seen: set[str] = set()
    for position, column in enumerate(columns, start=1):
        label = "" if column is None else str(column).strip()
        if not label or re.fullmatch(r"Unnamed: \d+", label):
            label = f"column_{position}"
            notes.append(f"Column {position} has no name; called it '{label}'.")
        original = label
        suffix = 2
        while label in seen:
            label = f"{original}_{suffix}"
            suffix += 1
        if label != original:
            notes.append(f"Column name '{original}' appears more than once; renamed a copy to '{label}'.")
        # pandas itself renames duplicate CSV headers to 'x.1'; say so too.
        elif re.fullmatch(r".+\.\d+", label) and label.rsplit(".", 1)[0] in seen:
            notes.append(f"Column name '{label.rsplit('.', 1)[0]}' appears more than once; "
                         f"a copy is called '{label}'.")
        seen.add(label)
        cleaned.append(label)
    return cleaned


def _clean_text_column(series: pd.Series) -> pd.Series:
    """Strip surrounding whitespace; make strings that are missing markers into missing values."""
    as_text = series.astype("string")
    stripped = as_text.str.strip()
    stripped = stripped.mask(stripped.isin(MISSING_MARKERS))
    # Mixed columns (numbers and text in one column) become text; numbers that were
    # stored as text become numbers, so a column keeps one type.
    numeric = pd.to_numeric(stripped, errors="coerce")
    if stripped.notna().any() and numeric.notna().sum() == stripped.notna().sum():
        return numeric
    return stripped.astype(object).where(stripped.notna(), None)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
