"""The bundled example datasets: Adult, COMPAS and German credit.

Each dataset is `assets/<name>.parquet` with a card `assets/<name>.json` (source, licence,
citation, columns, target, positive and favourable labels, sensitive attributes, known issues,
the transformations that built it, and the sha256 of the Parquet file). Both are made by
`scripts/build_assets.py` (`make assets`) from the raw public files; nothing here reads the
raw files.

Where the files are found: `BUNDLED_DIR` is `assets/` next to the `core/` package, i.e.
`Path(__file__).resolve().parents[2] / "assets"`. That holds for the editable install
that `make setup` makes (the package is the source tree), which is how Equiscope is run;
pyproject.toml therefore lists no package data for assets/. A non-editable wheel would not
carry assets/, and `list_datasets()` would then return an empty list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.errors import InputError

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "assets"


@dataclass(frozen=True)
class DatasetCard:
    """What a reviewer needs to know about a bundled dataset before auditing a model on it.

    `positive_label` is the target value a model predicts as 1; `favourable_outcome` is the
    target value that is good for the person (for COMPAS the positive label is 1 =
    recidivism, the favourable outcome 0). `cost_matrix` is only set where the dataset's
    documentation asks for one (German credit).
    """

    name: str
    title: str
    description: str
    source: str
    url: str
    licence: str
    citation: str
    rows: int
    columns: dict[str, str]
    target: str
    positive_label: str | int
    favourable_outcome: str | int
    sensitive: tuple[str, ...]
    known_issues: tuple[str, ...]
    transformations: tuple[str, ...]
    sha256: str
    cost_matrix: dict[str, object] | None = None

    @property
    def path(self) -> Path:
        """The Parquet file this card describes."""
        return BUNDLED_DIR / f"{self.name}.parquet"

    @classmethod
    def from_json(cls, data: dict) -> DatasetCard:
        return cls(
            name=data["name"],
            title=data["title"],
            description=data["description"],
            source=data["source"],
            url=data["url"],
            licence=data["licence"],
            citation=data["citation"],
            rows=int(data["rows"]),
            columns=dict(data["columns"]),
            target=data["target"],
            positive_label=data["positive_label"],
            favourable_outcome=data["favourable_outcome"],
            sensitive=tuple(data["sensitive"]),
            known_issues=tuple(data["known_issues"]),
            transformations=tuple(data["transformations"]),
            sha256=data["sha256"],
            cost_matrix=data.get("cost_matrix"),
        )


def _known_names() -> list[str]:
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.json"))


def _card_path(name: str) -> Path:
    known = _known_names()
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in known:
        raise InputError(
            f"no bundled dataset named {name!r}",
            f"bundled datasets are: {', '.join(known)}" if known else "no datasets are bundled",
        )
    return BUNDLED_DIR / f"{key}.json"


def load_card(name: str) -> DatasetCard:
    """The card of bundled dataset `name` (case-insensitive); InputError if unknown."""
    data = json.loads(_card_path(name).read_text(encoding="utf-8"))
    return DatasetCard.from_json(data)


def list_datasets() -> list[DatasetCard]:
    """Cards of every bundled dataset, sorted by name."""
    return [load_card(name) for name in _known_names()]


def load_bundled(name: str) -> pd.DataFrame:
    """The table of bundled dataset `name`: string and int64 columns, rows in a fixed order."""
    card = load_card(name)
    return pd.read_parquet(card.path)
