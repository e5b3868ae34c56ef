"""Fairness: how each model treats the groups, with intervals, and threshold what-ifs."""

from __future__ import annotations

import streamlit as st

from core.results.quality import flagged_models
from core.vocabulary import SUPERVISED
from dashboard.components import fairness_views, runs, state
from dashboard.components.format import md
from dashboard.components.result_words import partition_label


def render() -> None:
    st.title("Fairness")
    st.markdown("How each model treats the groups: the gaps between groups for every model (SSL and the "
                "supervised baseline), each model's per-group numbers with confidence intervals, and what "
                "per-group thresholds would change.")
    ws = state.workspace()
    picked = runs.current_run(ws)
    if picked is None:
        return
    _, run, res = picked
    root = str(ws.root)
    partitions = res.partitions
    state.keep_option("fair_partition", partitions, partitions[0])
    partition = st.selectbox("Groups to compare", partitions, key="fair_partition",
                             format_func=partition_label,
                             help="One sensitive attribute, or an intersection (for example sex & race).")

    st.header("1. Gaps between groups, per model", divider="gray")
    for flagged in flagged_models(res.report):  # a model no better than chance: its gaps mean little
        st.warning(md(flagged["text"]), icon=":material/warning:")
    fairness_views.gaps_section(res, run["id"], root, partition)

    st.header("2. Per-group numbers", divider="gray")
    models = res.models
    state.keep_option("fair_model", models, next((m for m in models if m != SUPERVISED), models[0]))
    model = st.selectbox("Model", models, key="fair_model")
    fairness_views.groups_section(res, run["id"], root, partition, model)

    st.header("3. What if each group had its own threshold?", divider="gray")
    fairness_views.whatif_section(res, run["id"], root, partition, model)


render()
