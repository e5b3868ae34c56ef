"""Session and workspace state shared by every page.

- The workspace folder comes from `EQUISCOPE_WORKSPACE` (set by `equiscope serve`), read at
  call time so tests can point each run at a temporary folder; it is opened once per folder
  per server process (`st.cache_resource`).
- The current study is `st.session_state["current_study_id"]`: per browser session, so two
  reviewers on one server never change each other's selection.
- Streamlit forgets a widget's value when a run does not draw that widget (another page is
  shown). The widgets whose values are kept across pages are listed once, in `KEPT_KEYS`.
  `keep_widget_state`, at the top of every full run, keeps a copy of the listed values
  under a key no widget uses (`KEPT`) and puts back any value Streamlit dropped;
  `remember_widget_state`, at the end of every full run, records the values as the page left
  them (a key the page deleted stays deleted).
  Why not simply re-assign every key at the top of every run (what this did before)? After a
  fragment run (the Train page polls its progress in one), a re-assigned value is stored under
  the widget's element id, and the clean-up Streamlit does on a page switch, *before* the new
  page's run, deletes it as stale: the Data form came back with the start-up defaults. And a
  re-assigned key counts as set by code, so every run sends its value to the browser again:
  under load, a run still in flight overwrote what the reviewer had just typed or picked.
- A choice widget whose options change (another run, another table) keeps its value while it is
  still an option, else falls back to a default: `keep_option`, called before the widget is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import streamlit as st

from core.workspace.store import DEFAULT_WORKSPACE, StudyRecord, Workspace

WORKSPACE_ENV = "EQUISCOPE_WORKSPACE"
DATASET_ENV = "EQUISCOPE_DATASET"
CURRENT_STUDY = "current_study_id"
KEPT = "_kept_widget_values"
_SHOWN_PAGE = "_shown_page"
STUDY_PARAM = "study"
RUN_KEY = "results_run"
"""The run picked on the result pages (components/runs.pick_run)."""

#: The Data page's form (components/data_source.py, data_setup.py).
DATA_FORM_KEYS = ["data_source", "bundled_dataset", "target_column", "positive_label", "target_operator",
                  "target_threshold", "sensitive_attributes", "include_pii", "features", "study_name"]
#: Every widget key whose value survives a visit to another page (app.py keeps them).
KEPT_KEYS = [
    *DATA_FORM_KEYS,
    # Train page settings (components/train_views.py)
    "train_method", "train_size", "train_epochs", "train_finetune_epochs", "train_label_pct", "train_strategies",
    "train_n_boot", "train_unaware", "train_replicates",
    # the result pages' choices
    RUN_KEY, "embed_colour", "embed_model", "fair_partition", "fair_model", "fair_gap", "compare_attribute",
    "compare_gap", "review_author",
    # Explain page (app_pages/explain.py, components/explain_views.py)
    "explain_model", "explain_row", "explain_row_search", "explain_num_samples", "explain_seed",
    "explain_with_proxies", "explain_other_model", "explain_subgroup_attribute", "explain_subgroup_rows",
    "explain_rates_proxies", "explain_explainer", "explain_flip_explained",
]


def workspace_root() -> Path:
    """The workspace folder this server uses."""
    return Path(os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE).expanduser().resolve()


@st.cache_resource(show_spinner=False)
def _open_workspace(root: str) -> Workspace:
    return Workspace(root)


def workspace() -> Workspace:
    """The open workspace (InputError if it cannot be created or written)."""
    return _open_workspace(str(workspace_root()))


def startup_dataset() -> str | None:
    """The bundled dataset the server was asked to open first (`equiscope serve --dataset`)."""
    name = os.environ.get(DATASET_ENV, "").strip()
    return name.lower() or None


def current_study_id() -> str | None:
    return st.session_state.get(CURRENT_STUDY)


def set_current_study(study_id: str | None) -> None:
    st.session_state[CURRENT_STUDY] = study_id


def keep_study_in_address() -> None:
    """Write the current study into the address (`?study=ID`) on every run (switching pages clears
    the query string), so a browser refresh, which starts a new session, reopens the same study."""
    study_id = current_study_id()
    if study_id and st.query_params.get(STUDY_PARAM) != study_id:
        st.query_params[STUDY_PARAM] = study_id


def study_from_address(ws: Workspace) -> bool:
    """At a session's first run: select the study named in the address (`?study=ID`), if it
    exists; True if one was selected. A refreshed page thus stays on its study."""
    study_id = st.query_params.get(STUDY_PARAM)
    if study_id and any(study["id"] == study_id for study in ws.list_studies()):
        st.session_state[CURRENT_STUDY] = study_id
        return True
    return False


def current_study(ws: Workspace) -> StudyRecord | None:
    """The current study's record, or None if none is selected (or it no longer exists)."""
    study_id = current_study_id()
    if not study_id:
        return None
    for study in ws.list_studies():
        if study["id"] == study_id:
            return study
    return None


def keep_option(key: str, options: Iterable, default: Any) -> None:
    """Before drawing the choice widget `key`: keep its value if it is still one of `options`,
    else set it to `default` (a value no longer offered would make Streamlit raise or show the
    first option while the session holds another)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def keep_widget_state(keys: list[str]) -> None:
    """At the top of every full run: copy these widget values aside, and put back any that
    Streamlit dropped since the last run (see the module docstring)."""
    session = st.session_state
    kept = dict(session.get(KEPT) or {})
    for key in keys:
        if key in session:
            kept[key] = session[key]
        elif key in kept:
            session[key] = kept[key]
    session[KEPT] = kept


def on_page_entry(page_title: str, keys: list[str]) -> None:
    """On the first run of a page after another page was shown: set the kept values again, by
    code. The browser forgets a widget when its page is left; redrawn, a widget whose value was
    not set by code in this run can show its first option while the session holds another
    value (seen once in Chromium: the Data page showed 'Adult' with the German study loaded).
    Only on entry, so nothing the reviewer is typing on the page can be overwritten."""
    session = st.session_state
    if session.get(_SHOWN_PAGE) == page_title:
        return
    session[_SHOWN_PAGE] = page_title
    for key in keys:
        if key in session:
            session[key] = session[key]


def remember_widget_state(keys: list[str]) -> None:
    """At the end of every full run (also one cut short by `st.rerun`): record these values as the
    page left them, so that `keep_widget_state` never brings back a value the page removed."""
    session = st.session_state
    session[KEPT] = {key: session[key] for key in keys if key in session}
