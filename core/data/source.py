"""Open what the user names: a bundled dataset (`adult`) or a file path (`~/data/loans.csv`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.data.loading import LARGEST_UPLOAD_BYTES, read_table
from core.data.datasets import DatasetCard, list_datasets, load_bundled, load_card
from core.errors import InputError


@dataclass
class DataSource:
    """A table and where it came from. `location` reopens it: a bundled name or an absolute
    file path. `card` is set for bundled datasets only."""

    name: str
    frame: pd.DataFrame
    sha256: str
    location: str = ""
    notes: list[str] = field(default_factory=list)
    card: DatasetCard | None = None


def open_source(name_or_path: str | Path, max_bytes: int = LARGEST_UPLOAD_BYTES) -> DataSource:
    """Load a bundled dataset by name, or a CSV / Parquet / Excel file by path (each format within its
    size limit, `core.data.loading.size_limit`)."""
    text = str(name_or_path)
    bundled = {card.name: card for card in list_datasets()}
    if text in bundled:
        return DataSource(name=text, frame=load_bundled(text), sha256=bundled[text].sha256, location=text,
                          card=load_card(text))
    path = Path(text).expanduser()
    if not path.exists() and path.suffix == "" and "/" not in text:
        raise InputError(f"'{text}' is neither a bundled dataset nor a file",
                         f"Bundled datasets: {', '.join(sorted(bundled))}; or give a file path")
    loaded = read_table(path, max_bytes=max_bytes)
    return DataSource(name=loaded.name, frame=loaded.frame, sha256=loaded.sha256, notes=loaded.notes,
                      location=str(path.resolve()))
