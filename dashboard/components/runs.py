"""A study's audit runs, as the result pages use them: the current study, a run picker, and the
run's artifacts loaded once per server process.

Results of a finished run never change, so they are cached by (workspace, run id). They are
shared between sessions without copying (`st.cache_resource`): the pages only read them
(`core.results.tables.RunResults` is frozen; frames are never modified in place). The picked run is
`st.session_state["results_run"]`, kept across pages (`state.KEPT_KEYS`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import InputError
from core.results.export import csv_bytes
from core.results.folder import RunResults, load_results
from core.results.summary import ONE_RUN_NOTICE
from core.workspace.store import RunRecord, StudyRecord, Workspace
from dashboard.components import state
from dashboard.components.format import md
from dashboard.components.messages import show_input_error

AUDIT = "audit"
STATUS_WORDS = {"queued": "waiting in the queue", "running": "running", "succeeded": "finished",
                "failed": "failed", "cancelled": "cancelled", "interrupted": "interrupted"}
STATUS_ICONS = {"queued": ":material/schedule:", "running": ":material/progress_activity:",
                "succeeded": ":material/check_circle:", "failed": ":material/error:",
                "cancelled": ":material/block:", "interrupted": ":material/warning:"}


def study_or_pointer(ws: Workspace) -> StudyRecord | None:
    """The current study; without one, say where to make it and return None."""
    study = state.current_study(ws)
    if study is None:
        st.info("**First:** set up a study on the Data page: choose a table, its outcome and the groups to "
                "compare.", icon=":material/arrow_forward:")
        st.page_link("app_pages/data.py", label="Go to Data", icon=":material/table_chart:")
    return study


def current_run(ws: Workspace) -> tuple[StudyRecord, RunRecord, RunResults] | None:
    """(study, run, results) of the run picked on a result page: the current study, then a
    selectbox of its finished runs. Without either, say what to do first and return None."""
    study = study_or_pointer(ws)
    picked = pick_run(ws, study) if study is not None else None
    if picked is None:
        return None
    one_run_notice(picked[1])
    return (study, *picked)


def one_run_notice(results: RunResults, name: str | None = None) -> None:
    """Every result page says so when its verdicts cover one training run only."""
    if results.view.one_training_run:
        st.warning(f"**{md(name)}:** {ONE_RUN_NOTICE}" if name else ONE_RUN_NOTICE, icon=":material/info:")


def audit_runs(ws: Workspace, study_id: str) -> list[RunRecord]:
    """The study's audit runs, oldest first."""
    return ws.list_runs(study_id=study_id, kind=AUDIT)


def finished_runs(ws: Workspace, study_id: str) -> list[RunRecord]:
    """The study's succeeded audit runs, newest first."""
    return [r for r in reversed(audit_runs(ws, study_id)) if r["status"] == "succeeded"]


def run_label(run: RunRecord) -> str:
    """'Quick run · scarf · 3 strategies · 100% labels (2025-01-31 14:02)'."""
    config = run.get("config") or {}
    when = (run.get("finished_at") or run.get("created_at") or "")[:16].replace("T", " ")
    fraction = config.get("label_fraction")
    labels = f" · {100 * float(fraction):g}% labels" if fraction is not None else ""
    return f"{run['name']}{labels} ({when} UTC)"


@st.cache_resource(show_spinner="Loading the run's results…", max_entries=16)
def _load(root: str, run_id: str) -> RunResults:
    return load_results(Path(root) / "runs" / run_id)


def results(ws: Workspace, run_id: str) -> RunResults:
    """A finished run's artifacts (cached; InputError if they cannot be read)."""
    return _load(str(ws.root), run_id)


def pick_run(ws: Workspace, study: StudyRecord, *, label: str = "Run",
             key: str = state.RUN_KEY) -> tuple[RunRecord, RunResults] | None:
    """A selectbox of the study's finished runs (newest first) and the chosen run's results.

    Without a finished run, say why (one running, one failed, none started) and point to the
    Train page; return None."""
    runs = finished_runs(ws, study["id"])
    if not runs:
        _no_finished_run(ws, study)
        return None
    by_id = {r["id"]: r for r in runs}
    state.keep_option(key, by_id, runs[0]["id"])
    run_id = st.selectbox(label, list(by_id), format_func=lambda r: run_label(by_id[r]), key=key,
                          help="Every finished audit of this study; the newest is chosen first.")
    try:
        return by_id[run_id], results(ws, run_id)
    except InputError as error:
        show_input_error(error)
        return None


def _no_finished_run(ws: Workspace, study: StudyRecord) -> None:
    runs = audit_runs(ws, study["id"])
    active = [r for r in runs if r["status"] in ("queued", "running")]
    if active:
        st.info("A run of this study is under way; its results appear here when it finishes. "
                "Follow it on the Train page.", icon=":material/hourglass_top:")
    elif runs:
        last = runs[-1]
        st.warning(f"No run of this study has finished yet. The last one is **{STATUS_WORDS[last['status']]}**"
                   + (f": {md(last['error'])}" if last.get("error") else "."), icon=":material/warning:")
    else:
        st.info("**First:** train and audit models on the Train page: the results appear here.",
                icon=":material/arrow_forward:")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")


def download_csv(label: str, frame: pd.DataFrame, file_name: str, key: str) -> None:
    """A download of `frame` as formula-safe CSV with its exact values. The CSV is made only when
    the reviewer clicks (deferred), so drawing the page does not pay for it on every rerun."""
    st.download_button(label, data=lambda: csv_bytes(frame), file_name=file_name, mime="text/csv", key=key,
                       icon=":material/download:", on_click="ignore")
