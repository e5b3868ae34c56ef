"""Fairness: the scorecard first (is any group treated worse, by which model, how sure, and is
pretraining better than the ordinary model), then, one click below, the gaps, the per-group
numbers and the threshold what-ifs."""

from __future__ import annotations

import streamlit as st

from core.results.quality import flagged_models
from core.vocabulary import SUPERVISED
from dashboard.components import fairness_views, runs, scorecard_view, state
from dashboard.components.format import md
from dashboard.components.result_words import partition_label


def render() -> None:
    st.title("Fairness")
    st.markdown("Is any group treated worse, by which model, how sure are we, and is pretraining better than the "
                "ordinary model here? The scorecard answers first; every measure is one click below it.")
    ws = state.workspace()
    picked = runs.current_run(ws)
    if picked is None:
        return
    study, run, res = picked
    root = str(ws.root)
    framing = scorecard_view.framing_section(ws, study, res.report, "fair_framing")

    st.header("Scorecard", divider="gray")
    scorecard_view.scorecard_section(res.report, framing)

    st.header("Details", divider="gray")
    partitions = res.partitions
    state.keep_option("fair_partition", partitions, partitions[0])
    partition = st.selectbox("Groups to compare", partitions, key="fair_partition",
                             format_func=partition_label,
                             help="One sensitive attribute, or an intersection (for example sex & race).")

    with st.expander("1. Gaps between groups, per model", icon=":material/bar_chart:"):
        for flagged in flagged_models(res.report):  # a model no better than chance: its gaps mean little
            st.warning(md(flagged["text"]), icon=":material/warning:")
        fairness_views.gaps_section(res, run["id"], root, partition, framing.get("outcome_effect"))

    models = res.models
    with st.expander("2. Per-group numbers", icon=":material/table:"):
        state.keep_option("fair_model", models, next((m for m in models if m != SUPERVISED), models[0]))
        model = st.selectbox("Model", models, key="fair_model")
        fairness_views.groups_section(res, run["id"], root, partition, model)

    with st.expander("3. What if each group had its own threshold?", icon=":material/tune:"):
        fairness_views.whatif_section(res, run["id"], root, partition, model)


render()
