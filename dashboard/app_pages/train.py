"""Train: pretrain an encoder with self-supervised learning, fine-tune models on it, audit them."""

from __future__ import annotations

import streamlit as st

from core.run.study_kind import is_predictions_study
from dashboard.components import runs, state, train_views
from dashboard.components.format import md


def render() -> None:
    st.title("Train")
    st.markdown("Train the models to audit: a self-supervised (SSL) encoder is pretrained on all rows without "
                "their outcome, models are fine-tuned from it in different ways, and a **supervised baseline** of "
                "the same shape is trained without pretraining. Every model is then audited on the same test rows, "
                "so you can see whether pretraining made a model fairer.")
    ws = state.workspace()
    study = runs.study_or_pointer(ws)
    if study is None:
        return
    st.caption(f"Study: **{md(study['name'])}**. The set-up (outcome, groups, features) comes from the Data page.")

    st.header("1. Settings", divider="gray")
    if is_predictions_study(r["config"] for r in runs.audit_runs(ws, study["id"])):
        st.info("This study is a table of a model's predictions: its columns are that model's outputs, not features "
                "to learn from, so there is nothing to train on it. Its audits are on the Fairness page; to train "
                "Equiscope's models, set up a study of the table the model was applied to on the Data page.",
                icon=":material/info:")
    else:
        train_views.settings_form(ws, study)

    st.header("2. Progress", divider="gray")
    train_views.progress_section(ws, study)

    st.header("3. Runs of this study", divider="gray")
    train_views.runs_list(ws, study)


render()
