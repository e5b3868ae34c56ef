"""Data page, step 2: what to audit — target, positive label, sensitive attributes, features.

The widgets hold their values in session state under keys named after what they hold.
Defaults are written into session state (never passed as `default=`) when the table or the
target changes, so a choice the reviewer made is kept until its context changes:
- a new table (sha256) resets the target, the sensitive attributes and the personal-data
  opt-in to the dataset card's values, or to suggestions for an uploaded file;
- a new target resets the positive label and the features.
A numeric target with many values (core.data.spec.is_many_valued_numeric) gets a comparison
and a threshold instead of a positive label ("wage >= 10"), with the base rate it gives.
What the widgets need from the target column is computed once per table and target (cached by
the table's sha256): on a 500,000-row upload it cost 0.3 s on every click.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.data import DatasetSpec
from core.data.spec import (is_many_valued_numeric, parse_threshold, suggest_sensitive, suggest_target,
                             suggest_threshold, threshold_base_rate)
from core.results.formatting import fmt_pct
from core.workspace.store import StudyRecord
from dashboard.components import tables
from dashboard.components.format import md, words
from dashboard.components.state import keep_option

MAX_LABEL_OPTIONS = 50
OPERATORS = (">=", ">", "<=", "<")
_POSITIVE_WORDS = ("1", "1.0", "true", "yes", "y", "t")


def load_study_into_form(study: StudyRecord, stash: dict | None) -> None:
    """Show a saved study's choices in the form (at the session's start, or on switching study)."""
    spec = study["spec"]
    state = st.session_state
    if study["settings"].get("source") == "upload":
        state["data_source"] = "upload"
        state["uploaded_table"] = stash
    else:
        state["data_source"] = "bundled"
        state["bundled_dataset"] = study["dataset"]
    state["target_column"] = spec["target"]
    state["positive_label"] = spec["positive_label"]
    threshold = parse_threshold(spec["positive_label"], spec["target"])
    if threshold is not None:
        state["target_operator"], state["target_threshold"] = threshold.operator, threshold.value
    state["sensitive_attributes"] = list(spec["sensitive"])
    state["include_pii"] = bool(spec.get("include_pii"))
    if spec.get("features") is not None:
        state["features"] = list(spec["features"])
    state["study_name"] = study["name"]
    state["_form_table"] = study["dataset_sha256"]
    state["_form_target"] = f"{study['dataset_sha256']}:{spec['target']}"


def choose_spec(table: tables.Table, facts: tables.ColumnFacts) -> DatasetSpec:
    """Draw the set-up widgets; return the spec they describe (validated later by `prepare`)."""
    frame = table.frame
    columns = [str(c) for c in frame.columns]
    state = st.session_state
    if state.get("_form_table") != table.sha256:
        state["_form_table"] = table.sha256
        state["target_column"] = default_target(table, facts)
        state["sensitive_attributes"] = (list(table.card.sensitive) if table.card else suggest_sensitive(frame))
        state["include_pii"] = False
        state.pop("study_name", None)
    keep_option("target_column", columns, default_target(table, facts))

    left, right = st.columns(2)
    target = left.selectbox("Target: the outcome the model predicts", columns, key="target_column",
                            help="A column with two outcomes (for example approved / refused). With more than "
                                 "two values, the one you pick below is positive and all others negative.")
    target_facts = facts_of_target(table.sha256, target, frame[target])
    labels, numeric_target = target_facts.labels, target_facts.many_valued_numeric
    if state.get("_form_target") != f"{table.sha256}:{target}":
        state["_form_target"] = f"{table.sha256}:{target}"
        state["positive_label"] = default_positive(labels, table, target)
        if numeric_target:
            suggested = parse_threshold(suggest_threshold(frame[target]))
            state["target_operator"], state["target_threshold"] = suggested.operator, suggested.value
        state["features"] = tables.usable_features(facts, target, bool(state.get("include_pii")))
    if numeric_target:
        positive_label = _threshold_widgets(left, table.sha256, frame[target], target_facts)
    else:
        keep_option("positive_label", labels, labels[0] if labels else None)
        positive_label = left.selectbox("Positive label: the outcome the model predicts as 1", labels,
                                        key="positive_label",
                                        help="Usually the outcome that is good for the person (a loan granted, "
                                             "income above a line); fairness metrics such as the selection rate "
                                             "count this outcome.")
        if target_facts.n_values > len(labels):
            left.caption(f"'{md(target)}' has many values; the {MAX_LABEL_OPTIONS} most frequent are listed.")

    options = [c for c in columns if c != target]
    state["sensitive_attributes"] = [c for c in state.get("sensitive_attributes") or [] if c in options]
    right.multiselect("Sensitive attributes: the groups to compare", options, key="sensitive_attributes",
                      help="Columns such as sex, race or age whose groups should be treated alike. Choose one or "
                           "more; numeric columns such as age are compared in bands.")
    if not table.card:
        suggested = [c for c in suggest_sensitive(frame) if c != target]
        if suggested:
            right.caption(f"Suggested from the column names: {md(words(suggested))}. Please confirm.")

    include_pii = _personal_data(facts, target)
    feature_options = [c for c in options if include_pii or c not in facts.pii]
    state["features"] = [c for c in state.get("features") or [] if c in feature_options]
    st.multiselect("Features: the columns the model may use", feature_options, key="features",
                   help="By default every usable column. Sensitive attributes are features too unless you "
                        "remove them here. Identifiers, dates and free text are never used.")
    return DatasetSpec(target=target, sensitive=tuple(state["sensitive_attributes"]),
                       positive_label=positive_label, features=tuple(state["features"]),
                       include_pii=include_pii)


@dataclass(frozen=True)
class TargetFacts:
    """What the set-up widgets need from the target column."""

    labels: list[str]  # its values as text, most frequent first (at most MAX_LABEL_OPTIONS)
    n_values: int  # distinct non-missing values
    many_valued_numeric: bool  # numeric with many values: a threshold, not a label
    low: float | None  # numeric range and median (many-valued numeric targets only)
    high: float | None
    median: float | None


@st.cache_data(show_spinner=False, max_entries=64)
def facts_of_target(sha256: str, target: str, _series: pd.Series) -> TargetFacts:
    """The target column's facts, once per table (sha256) and target."""
    numeric = is_many_valued_numeric(_series)
    values = pd.to_numeric(_series, errors="coerce").dropna() if numeric else None
    return TargetFacts(labels=target_values(_series), n_values=int(_series.dropna().nunique()),
                       many_valued_numeric=numeric,
                       low=float(values.min()) if numeric else None, high=float(values.max()) if numeric else None,
                       median=float(values.median()) if numeric else None)


@st.cache_data(show_spinner=False, max_entries=64)
def _threshold_rate(sha256: str, target: str, positive_label: str, _series: pd.Series) -> float | None:
    return threshold_base_rate(_series, positive_label)


def _threshold_widgets(column, sha256: str, series: pd.Series, facts: TargetFacts) -> str:
    """A comparison and a threshold for a numeric target; return the positive label they make
    (">= 10", read by core.data.spec.parse_threshold) after showing the base rate it gives."""
    state = st.session_state
    target = str(series.name)
    low, high = facts.low, facts.high
    keep_option("target_operator", list(OPERATORS), OPERATORS[0])
    if not low <= float(state.get("target_threshold", low)) <= high:
        state["target_threshold"] = facts.median
    operator_column, value_column = column.columns([1, 3])
    operator = operator_column.selectbox("Positive when", OPERATORS, key="target_operator",
                                         help=f"'{target}' is numeric with many values: the positive outcome "
                                              "is the rows on one side of a threshold.")
    threshold = value_column.slider(f"Threshold on '{target}'", min_value=low, max_value=high,
                                    key="target_threshold")
    positive_label = f"{operator} {threshold:g}"
    rate = _threshold_rate(sha256, target, positive_label, series)
    column.caption(f"Positive: **{md(parse_threshold(positive_label).label(target))}**, "
                   f"{fmt_pct(rate)} of the labelled rows (the base rate).")
    return positive_label


def _personal_data(facts: tables.ColumnFacts, target: str) -> bool:
    """Say which columns are withheld as personal data and offer the opt-in; return it."""
    flagged = {column: finding for column, finding in facts.pii.items() if column != target}
    if not flagged:
        st.session_state["include_pii"] = False
        return False
    lines = [f"**{md(column)}**: {md(finding['reason'])}" for column, finding in flagged.items()]
    opted_in = bool(st.session_state.get("include_pii"))
    if opted_in:
        st.warning("Personal data **included** at your request:\n\n" + "\n".join(f"- {line}" for line in lines),
                   icon=":material/lock_open:")
    else:
        st.warning(f"Personal data found. Withheld from the model, reports and exports: "
                   f"{md(words(list(flagged)))}.\n\n" + "\n".join(f"- {line}" for line in lines),
                   icon=":material/lock:")
    st.checkbox("Use these personal-data columns anyway (only with a lawful reason, e.g. consent)",
                key="include_pii", on_change=_on_pii_toggle, args=(list(flagged),))
    return bool(st.session_state.get("include_pii"))


def _on_pii_toggle(flagged: list[str]) -> None:
    """Opting in adds the flagged columns to the features; opting out removes them."""
    state = st.session_state
    current = list(state.get("features") or [])
    if state.get("include_pii"):
        state["features"] = current + [c for c in flagged if c not in current]
    else:
        state["features"] = [c for c in current if c not in flagged]


def target_values(series: pd.Series) -> list[str]:
    """The target's values as text (as `prepare` reads them), most frequent first."""
    values = series.dropna().astype(str).str.strip()
    return [str(v) for v in values.value_counts().index[:MAX_LABEL_OPTIONS]]


def default_target(table: tables.Table, facts: tables.ColumnFacts) -> str:
    """The card's target; else core's first guess (never an identifier or a sensitive-looking column)."""
    columns = [str(c) for c in table.frame.columns]
    if table.card and table.card.target in columns:
        return table.card.target
    return _suggested_target(table.sha256, table.frame, facts)


@st.cache_data(show_spinner=False, max_entries=16)
def _suggested_target(sha256: str, _frame: pd.DataFrame, _facts: tables.ColumnFacts) -> str:
    """core's guess reads every row of the candidate columns (0.1 s at 500,000 rows): once per table."""
    return suggest_target(_frame, _facts.kinds, list(_facts.pii))


def default_positive(labels: list[str], table: tables.Table, target: str) -> str | None:
    """The card's positive label; else a yes/true/1 value; else the less frequent value."""
    if table.card and target == table.card.target and str(table.card.positive_label) in labels:
        return str(table.card.positive_label)
    yes = [v for v in labels if v.lower() in _POSITIVE_WORDS]
    if len(yes) == 1:
        return yes[0]
    return labels[-1] if labels else None
