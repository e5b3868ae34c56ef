"""Data page, step 1: which table to audit — a bundled example or the reviewer's own file.

An upload is kept in `st.session_state["uploaded_table"]` (name, bytes, sha256) so it
survives a visit to another page (Streamlit clears a file uploader that is not drawn). It
reaches the workspace folder only when the reviewer saves a study (`core.workspace.uploads`), so a bad
file leaves the workspace unchanged.

Reading and profiling a table happen once per content (sha256, `tables`); while they run, a
status box shows core's progress reports (rows read so far, column k of n). Nothing is drawn
on a rerun that finds them done.
"""

from __future__ import annotations

import time

import streamlit as st

from core.data.loading import size_limit
from core.errors import InputError
from dashboard.components import state, tables
from dashboard.components.format import bullets, md
from dashboard.components.messages import show_input_error

SOURCE_LABELS = {"bundled": "A bundled example dataset", "upload": "My own file (CSV, Parquet or Excel)",
                 "predictions": "I already have a model's predictions"}
#: The source whose table holds a model's predictions (or is scored by a model file): no training.
PREDICTIONS = "predictions"
UPLOAD_TYPES = ["csv", "tsv", "txt", "parquet", "pq", "xlsx", "xlsm"]
STASH = "uploaded_table"


#: Work done sooner shows no progress box (a small table would leave a box saying "0.0 s").
SHOW_AFTER_S = 0.5


class LiveProgress:
    """core's `progress(fraction, message)` drawn as a status box with a bar, opened on the first
    report after SHOW_AFTER_S (a result kept from an earlier run reports nothing: nothing is drawn)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = time.perf_counter()
        self.box = None
        self.bar = None

    def __call__(self, fraction: float, message: str) -> None:
        if self.box is None and time.perf_counter() - self.started < SHOW_AFTER_S:
            return
        if self.box is None:
            self.box = st.status(self.title, expanded=True)
            self.bar = self.box.progress(0.0)
        self.bar.progress(min(max(float(fraction), 0.0), 1.0), text=md(message))

    def finish(self, done: str, failed: bool = False) -> None:
        """Close the box (if one was opened) with what was done and how long it took."""
        if self.box is not None:
            self.bar.progress(1.0, text=md(done))
            self.box.update(label=f"{md(done)} in {time.perf_counter() - self.started:.1f} s",
                            state="error" if failed else "complete", expanded=False)


def column_facts(table: tables.Table) -> tables.ColumnFacts:
    """The table's kinds, personal data and column profile, with progress while they are computed."""
    progress = LiveProgress(f"Profiling the {table.frame.shape[1]} columns of {md(table.name)}…")
    facts = tables.column_facts(table.sha256, table.frame, progress=progress)
    progress.finish(f"Profiled {table.frame.shape[1]} columns of {table.frame.shape[0]:,} rows")
    return facts


def upload_limit_mb() -> int:
    return max(1, tables.UPLOAD_LIMIT_BYTES // 2**20)


def limits_in_words() -> str:
    """'CSV or Excel at most 200 MB, Parquet at most 500 MB': the loader's limits, as the uploader says them."""
    csv_mb, parquet_mb = (size_limit(is_parquet, tables.UPLOAD_LIMIT_BYTES) / 2**20 for is_parquet in (False, True))
    return f"CSV or Excel at most {csv_mb:,.0f} MB, Parquet at most {parquet_mb:,.0f} MB"


def choose_table() -> tables.Table | None:
    """Draw the source choice; return the loaded table, or None (after saying why)."""
    st.radio("Where is the data?", list(SOURCE_LABELS), format_func=SOURCE_LABELS.get, key="data_source",
             horizontal=True)
    if st.session_state.get("data_source", "bundled") == "bundled":
        return _bundled()
    return _upload()


def wants_predictions() -> bool:
    """True when the reviewer audits predictions (or a model file) they already have."""
    return st.session_state.get("data_source") == PREDICTIONS


def _bundled() -> tables.Table | None:
    cards = {card.name: card for card in tables.bundled_cards()}
    if not cards:
        st.error("No bundled datasets were found next to the Equiscope code. Upload a file instead.")
        return None
    state.keep_option("bundled_dataset", cards, "adult" if "adult" in cards else next(iter(cards)))
    st.selectbox("Dataset", list(cards), format_func=lambda name: cards[name].title, key="bundled_dataset")
    table = tables.bundled_table(st.session_state["bundled_dataset"])
    _show_card(table)
    return table


def _show_card(table: tables.Table) -> None:
    card = table.card
    st.markdown(card.description)
    st.caption(f"{table.frame.shape[0]:,} rows × {table.frame.shape[1]} columns · Source: {card.source} · "
               f"Licence: {card.licence}")
    left, right = st.columns(2)
    with left.expander(f"Known issues with this dataset ({len(card.known_issues)})", icon=":material/warning:"):
        st.markdown(bullets(card.known_issues))
    with right.expander("How to cite it", icon=":material/format_quote:"):
        st.markdown(card.citation)
        st.markdown(f"[{card.url}]({card.url})")


def _remember_upload() -> None:
    """on_change of the uploader: the reviewer added or removed a file."""
    uploaded = st.session_state.get("upload_file")
    st.session_state[STASH] = None if uploaded is None else _as_stash(uploaded)


def _as_stash(uploaded) -> dict:
    data = uploaded.getvalue()
    return {"name": uploaded.name, "data": data, "sha256": tables.sha256_of(data), "file_id": uploaded.file_id}


def _upload() -> tables.Table | None:
    st.file_uploader(f"Upload a table ({limits_in_words()})",
                     type=UPLOAD_TYPES, key="upload_file", on_change=_remember_upload,
                     max_upload_size=upload_limit_mb(),
                     help="The first row must hold the column names. The file is copied into the workspace "
                          "folder only when you save a study. Parquet may be larger than CSV: it is typed and "
                          "compact, so it is read faster and in less memory. A larger table must be sampled "
                          "first.")
    uploaded = st.session_state.get("upload_file")
    stash = st.session_state.get(STASH)
    if uploaded is not None and (stash is None or stash.get("file_id") != uploaded.file_id):
        stash = st.session_state[STASH] = _as_stash(uploaded)
    if not stash:
        st.info("Upload a file to start. One row per person (or case), one column per attribute, and a column "
                "with the outcome the model predicts.", icon=":material/upload_file:")
        return None
    progress = LiveProgress(f"Reading {md(stash['name'])}…")
    try:
        table = tables.uploaded_table(stash["sha256"], stash["name"], tables.UPLOAD_LIMIT_BYTES, stash["data"],
                                      progress=progress)
    except InputError as error:
        progress.finish("Could not read the file", failed=True)
        show_input_error(error)
        return None
    progress.finish(f"Read {table.frame.shape[0]:,} rows × {table.frame.shape[1]} columns")
    st.caption(f"Using **{md(table.name)}**: {table.frame.shape[0]:,} rows × {table.frame.shape[1]} columns "
               f"({table.file_format}, sha256 {table.sha256[:12]}…)")
    return table
