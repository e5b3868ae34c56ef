"""Data page, for "I already have a model's predictions": map the uploaded table's columns
(the outcome, the groups, each model's score or decision column), or give a model file to apply
to it, and start the audit of those models (core.run.uploaded) as a job.

Nothing is trained: the study is saved as for any uploaded table (the file is copied into the
workspace only when the audit starts) and the run is an ordinary audit run of that study, so
Fairness, Compare, Review and the report read it as they read any other.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.data.predictions import MAX_MODELS, PredictionsTable, read_predictions
from core.data.source import DataSource
from core.data.spec import DatasetSpec, prepare, suggest_sensitive
from core.errors import InputError
from core.learning.outside import SKOPS_SUFFIXES, load_outside_model, skops_untrusted_types
from core.run.uploaded import OUTSIDE_MODEL_STUDY, UploadedConfig
from core.vocabulary import DECISION_THRESHOLD, PREDICTIONS_STUDY
from core.workspace import jobs
from core.workspace.uploads import save_upload
from dashboard.components import access, data_setup, runs, state, studies, tables
from dashboard.components.format import md, words
from dashboard.components.messages import show_input_error

MODEL_TYPES = ["skops", "onnx", "pkl", "pickle", "joblib"]  # pickles are accepted only to be refused in words
N_BOOT_CHOICES = (200, 1000)


def render(ws, table: tables.Table) -> None:
    """The mapping, its check, and the button that starts the audit."""
    frame = table.frame
    columns = [str(c) for c in frame.columns]
    session = st.session_state
    if session.get("_pred_table") != table.sha256:  # a new table: fresh first guesses
        session["_pred_table"] = table.sha256
        facts = tables.column_facts(table.sha256, frame)
        session["pred_target"] = data_setup.default_target(table, facts)
        session["pred_sensitive"] = [c for c in suggest_sensitive(frame) if c != session["pred_target"]]
        session["pred_scores"] = score_like_columns(frame, [session["pred_target"], *session["pred_sensitive"]])
        session["pred_decisions"] = []

    st.header("2. What the predictions are", divider="gray")
    state.keep_option("pred_target", columns, columns[0])
    st.selectbox("Outcome (what actually happened)", columns, key="pred_target")
    target = session["pred_target"]
    labels = _outcome_labels(table.sha256, target, frame[target])
    state.keep_option("pred_positive", labels, data_setup.default_positive(labels, table, target))
    st.selectbox("Positive outcome", labels, key="pred_positive",
                 help="The outcome a score is the probability of, and that a decision of 1 means")
    others = [c for c in columns if c != target]
    session["pred_sensitive"] = [c for c in session.get("pred_sensitive", []) if c in others]
    st.multiselect("Sensitive attributes (the groups to compare)", others, key="pred_sensitive")
    free = [c for c in others if c not in session["pred_sensitive"]]
    for key in ("pred_scores", "pred_decisions"):
        session[key] = [c for c in session.get(key, []) if c in free]
    model_file = st.file_uploader("Or a model file to apply to this table instead of model columns (optional: "
                                  "scikit-learn saved with skops, or ONNX)", type=MODEL_TYPES, key="pred_model_file",
                                  help="Never a pickle or joblib file: loading one runs any code it holds.")
    if model_file is None:
        left, right = st.columns(2)
        left.multiselect("Score columns (probability of the positive outcome, 0 to 1)", free, key="pred_scores",
                         max_selections=MAX_MODELS)
        right.multiselect("Decision columns (0/1, or the outcome's labels)", free, key="pred_decisions",
                          max_selections=MAX_MODELS)
        if session["pred_scores"]:
            st.slider("A score counts as positive from", 0.01, 0.99, DECISION_THRESHOLD, 0.01, key="pred_threshold")
    st.selectbox("Bootstrap resamples for the intervals", N_BOOT_CHOICES, index=1, key="pred_n_boot")

    config = _config(table, model_file)
    if config is None:
        return
    st.header("3. Audit the predictions", divider="gray")
    if st.button("Audit these models", type="primary", key="pred_audit", icon=":material/play_arrow:"):
        _start(ws, table, config, model_file)
    started = session.get("_pred_started")
    if started:
        st.success(f"The audit is under way (run {md(started)}). Its results appear on the Fairness page when it "
                   "finishes; its progress shows on the Train page.", icon=":material/check_circle:")
        st.page_link("app_pages/fairness.py", label="Go to Fairness", icon=":material/balance:")


def score_like_columns(frame: pd.DataFrame, taken: list[str]) -> list[str]:
    """First guesses for score columns: numeric, within [0, 1], more than two values, named
    neither as the outcome nor as a group; at most MAX_MODELS."""
    found = []
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        if column in taken or values.isna().any() or values.nunique() <= 2:
            continue
        if values.min() >= 0 and values.max() <= 1:
            found.append(str(column))
    return found[:MAX_MODELS]


def _config(table: tables.Table, model_file) -> UploadedConfig | None:
    """The audit the widgets describe, checked (None after showing why not)."""
    session = st.session_state
    base = dict(data="", target=session["pred_target"], positive=session.get("pred_positive"),
                sensitive=list(session["pred_sensitive"]), n_boot=int(session.get("pred_n_boot", 1000)))
    source = DataSource(name=table.name, frame=table.frame, sha256=table.sha256)
    try:
        if model_file is not None:
            if not base["sensitive"]:
                raise InputError("No sensitive attribute chosen", "Choose the groups to compare")
            trust = _accepted_types(model_file.name, model_file.getvalue())
            if trust is None:
                return None
            model = _check_model_file(model_file.name, model_file.getvalue(), trust)
            st.caption(f"Model **{md(model.name)}** reads {len(model.input_columns)} columns; it is applied to the "
                       "table's test rows (the split a training audit of this table uses).")
            return UploadedConfig(**base, model=model_file.name, trust_types=trust, kind=OUTSIDE_MODEL_STUDY)
        checked = _checked_predictions(table.sha256, json.dumps([base["target"], base["sensitive"], session["pred_scores"],
                                       session["pred_decisions"], base["positive"],
                                       float(session.get("pred_threshold", DECISION_THRESHOLD))]), source)
    except InputError as error:
        show_input_error(error)
        return None
    _describe(checked)
    session["_pred_checked"] = checked
    return UploadedConfig(**base, scores=list(session["pred_scores"]), decisions=list(session["pred_decisions"]),
                          threshold=checked.threshold, kind=PREDICTIONS_STUDY)


@st.cache_data(show_spinner=False, max_entries=32)
def _outcome_labels(sha256: str, target: str, _series: pd.Series) -> list[str]:
    """The outcome's values as text, sorted (at most 50), once per table and outcome column."""
    return sorted(_series.dropna().astype(str).str.strip().unique())[:50]


@st.cache_resource(show_spinner="Checking the predictions…", max_entries=8)
def _checked_predictions(sha256: str, choices: str, _source: DataSource) -> PredictionsTable:
    """`read_predictions` once per table and choices (its arguments as JSON), shared: it reads every
    row (seconds on 500,000 rows) and ran on every rerun (issue 22). An InputError is not kept."""
    target, sensitive, scores, decisions, positive, threshold = json.loads(choices)
    return read_predictions(_source, target, sensitive, scores=scores, decisions=decisions, positive=positive,
                            threshold=threshold)


def _check_model_file(name: str, data: bytes, trust: list[str]):
    """Load the uploaded model from a temporary copy (the workspace keeps it only when the audit starts)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(name).name
        path.write_bytes(data)
        return load_outside_model(path, trust_types=trust)


def _accepted_types(name: str, data: bytes) -> list[str] | None:
    """The skops types the reviewer accepts: every type skops does not trust by default is
    listed by name and must be ticked before the file is loaded (loading a type runs its code);
    None until each is. An ONNX file (or a pickle, refused when loaded) has none to accept."""
    if Path(name).suffix.lower() not in SKOPS_SUFFIXES:
        return []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(name).name
        path.write_bytes(data)
        untrusted = skops_untrusted_types(path)  # read from the archive's schema: nothing is loaded
    if not untrusted:
        return []
    session = st.session_state
    session["pred_trust_types"] = [t for t in session.get("pred_trust_types") or [] if t in untrusted]
    st.warning(f"**{md(name)}** builds {len(untrusted)} type{'s' if len(untrusted) > 1 else ''} that skops does "
               "not trust by default: " + ", ".join(f"`{t}`" for t in untrusted) + ". Loading a type runs its code; "
               "accept each one by name once you know where it comes from.", icon=":material/warning:")
    st.multiselect("Types I have reviewed and accept", untrusted, key="pred_trust_types")
    refused = [t for t in untrusted if t not in session["pred_trust_types"]]
    if refused:
        st.info(f"The model is loaded, and the audit can start, once every listed type is accepted "
                f"({len(refused)} not yet).", icon=":material/info:")
        return None
    return list(session["pred_trust_types"])


def _describe(checked: PredictionsTable) -> None:
    kinds = [f"**{md(m.name)}** ({'scores' if m.scores is not None else 'decisions'})" for m in checked.models]
    rate = float(np.mean(checked.y))
    st.markdown(f"{len(checked.row_ids):,} rows with an outcome ({rate:.0%} positive), grouped by "
                f"{md(words(list(checked.data.spec.sensitive)))}; {len(kinds)} model{'s' if len(kinds) > 1 else ''}: "
                + ", ".join(kinds) + ".")
    for warning in checked.data.warnings:
        st.warning(warning, icon=":material/warning:")


def _start(ws, table: tables.Table, config: UploadedConfig, model_file) -> None:
    """Save the study (the table into the workspace), store the model file if any, submit the job."""
    session = st.session_state
    stash = session.get("uploaded_table")
    try:
        if model_file is not None:
            data = prepare(table.frame, DatasetSpec(target=config.target, sensitive=tuple(config.sensitive),
                                                    positive_label=config.positive))
        else:
            data = session["_pred_checked"].data
        what = f"model {model_file.name}" if model_file else "predictions"
        name = f"{table.name}: {what} by {words(config.sensitive)}"
        study_id, _ = studies.save_study(ws, table, data, name, stash)
        study = ws.get_study(study_id)
        config.data = str(ws.root / study["settings"]["stored_path"])
        if model_file is not None:
            config.model = str(save_upload(ws.root, model_file.getvalue(), model_file.name,
                                           max_bytes=tables.UPLOAD_LIMIT_BYTES))
    except InputError as error:
        show_input_error(error)
        return
    state.set_current_study(study_id)
    what = f"model {model_file.name}" if model_file else f"{len(config.scores) + len(config.decisions)} uploaded models"
    session["_pred_started"] = jobs.submit(ws, runs.AUDIT, f"Audit of {what}", config.to_dict(), study_id=study_id,
                                           actor=access.reviewer())
