"""The Data page's core calls, cached so that a rerun (any click) does not recompute them.

Every cache is keyed by the table's sha256 (content hash) and the reviewer's choices as
JSON; the DataFrame itself is passed with a leading underscore so Streamlit does not hash
45,000 rows on every rerun. `InputError` is never cached: it is raised again, cheaply, on
the next rerun, and the page shows it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from core.data import (DatasetSpec, PreparedData, find_proxies, prepare, profile_columns,
                       profile_groups, read_table, scan_pii)
from core.data.kinds import FEATURE_KINDS, infer_kinds
from core.data.loading import LARGEST_UPLOAD_BYTES, Progress
from core.data.datasets import DatasetCard, list_datasets, load_bundled, load_card

UPLOAD_LIMIT_BYTES = LARGEST_UPLOAD_BYTES
"""Largest upload the page accepts (Parquet's limit; the loader holds CSV and Excel to theirs);
tests lower it to try a 'huge' file."""


@dataclass(frozen=True)
class Table:
    """A loaded table and where it came from (`source` is "bundled" or "upload")."""

    name: str
    sha256: str
    frame: pd.DataFrame
    source: str
    file_format: str
    notes: tuple[str, ...] = ()
    card: DatasetCard | None = None


@dataclass(frozen=True)
class ColumnFacts:
    """Spec-independent facts about a table's columns."""

    kinds: dict[str, str]
    pii: dict[str, dict]  # column -> PiiFinding.to_dict()
    profile: list[dict] = field(default_factory=list)


def spec_key(spec: DatasetSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_data(show_spinner=False)
def bundled_cards() -> list[DatasetCard]:
    return list_datasets()


@st.cache_data(show_spinner="Loading the dataset…", max_entries=8)
def bundled_table(name: str) -> Table:
    card = load_card(name)
    return Table(name=card.name, sha256=card.sha256, frame=load_bundled(card.name), source="bundled",
                 file_format="parquet", card=card)


@st.cache_resource(show_spinner=False, max_entries=16)
def _kept(what: str, key: str) -> dict:
    """An empty dict per (what, key), kept like a cache entry, where a result that reports its
    progress is stored once computed. It is computed outside Streamlit's caches: a cached
    function replays what it drew, and a progress bar drawn from inside one breaks the replay.
    Shared, not copied (cache_resource): copying a 500,000-row upload cost 0.3 s every rerun."""
    return {}


def uploaded_table(sha256: str, name: str, max_bytes: int, data: bytes, progress: Progress | None = None) -> Table:
    """The upload read once per content (sha256); `progress` hears the rows read while it is read."""
    kept = _kept("upload", f"{sha256}:{name}:{max_bytes}")
    if "table" not in kept:
        loaded = read_table(data, name=name, max_bytes=max_bytes, progress=progress)
        kept["table"] = Table(name=loaded.name, sha256=loaded.sha256, frame=loaded.frame, source="upload",
                              file_format=loaded.file_format, notes=tuple(loaded.notes))
    return kept["table"]


def column_facts(sha256: str, frame: pd.DataFrame, progress: Progress | None = None) -> ColumnFacts:
    """Kinds, personal data and the column profile, once per table; `progress` hears each step
    (kinds and the personal-data scan take about half the time on a large table)."""
    kept = _kept("facts", sha256)
    if "facts" not in kept:
        report = progress or (lambda fraction, message: None)
        report(0.0, f"Finding the kind of each of {frame.shape[1]} columns")
        kinds = infer_kinds(frame)
        report(0.2, "Looking for personal data")
        findings = scan_pii(frame)
        pii = {finding.column: finding.to_dict() for finding in findings}
        profile = profile_columns(frame, kinds, {finding.column: finding.kind for finding in findings},
                                  progress=lambda fraction, message: report(0.5 + 0.5 * fraction, message))
        kept["facts"] = ColumnFacts(kinds=kinds, pii=pii, profile=profile)
    return kept["facts"]


def usable_features(facts: ColumnFacts, target: str, include_pii: bool) -> list[str]:
    """Columns a model may use by default: numeric, boolean or categorical, not the target, and
    not personal data unless the reviewer opted in (the same rule `prepare` applies)."""
    return [column for column, kind in facts.kinds.items()
            if column != target and kind in FEATURE_KINDS and (include_pii or column not in facts.pii)]


@st.cache_resource(show_spinner="Checking the set-up…", max_entries=8)
def prepared(sha256: str, spec_json: str, _frame: pd.DataFrame) -> PreparedData:
    """`prepare`, shared without copying (cache_resource): the page only reads it, and copying
    Adult's prepared table (10 MB) cost 15-35 ms on every rerun. At most 8 set-ups are kept (one
    per reviewer of eight): each choice of groups is an entry, and a 500,000-row upload's
    prepared table is hundreds of MB, so 32 could hold several GB."""
    return prepare(_frame, DatasetSpec.from_dict(json.loads(spec_json)))


@st.cache_data(show_spinner=False, max_entries=32)
def group_profile(sha256: str, spec_json: str, _frame: pd.DataFrame) -> dict[str, list[dict]]:
    return profile_groups(prepared(sha256, spec_json, _frame))


@st.cache_data(show_spinner="Looking for proxies…", max_entries=32)
def proxy_findings(sha256: str, proxy_key: str, _frame: pd.DataFrame, _spec_json: str) -> list[dict]:
    """Proxies depend on the features and the groups, not on the positive label, so the key
    (`proxy_key`) leaves the label out: changing it does not recompute them."""
    data = prepared(sha256, _spec_json, _frame)
    return [finding.to_dict() for finding in find_proxies(data.frame[data.features], data.groups)]


def proxy_key(spec: DatasetSpec) -> str:
    as_dict = spec.to_dict()
    as_dict.pop("positive_label")
    return json.dumps(as_dict, sort_keys=True)
