"""Fairness: how each model treats the groups, with intervals, and threshold what-ifs."""

from __future__ import annotations

import streamlit as st

from core.results.tables import SUPERVISED
from dashboard.components import fairness_views, runs, state


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
    if st.session_state.get("fair_partition") not in partitions:
        st.session_state["fair_partition"] = partitions[0]
    partition = st.selectbox("Groups to compare", partitions, key="fair_partition",
                             format_func=fairness_views.partition_label,
                             help="One sensitive attribute, or an intersection (for example sex & race).")

    st.header("1. Gaps between groups, per model", divider="gray")
    fairness_views.gaps_section(res, run["id"], root, partition)

    st.header("2. Per-group numbers", divider="gray")
    models = res.models
    if st.session_state.get("fair_model") not in models:
        st.session_state["fair_model"] = next((m for m in models if m != SUPERVISED), models[0])
    model = st.selectbox("Model", models, key="fair_model")
    fairness_views.groups_section(res, run["id"], root, partition, model)

    st.header("3. What if each group had its own threshold?", divider="gray")
    fairness_views.whatif_section(res, run["id"], root, partition, model)


render()
