"""Compare: every finished run of the study, side by side."""

from __future__ import annotations

import streamlit as st

from core.errors import InputError
from core.results.quality import flagged_models
from core.vocabulary import GAP_NAMES
from dashboard.components import (compare_views, federated_views, grid_views, mitigation_views, privacy_views, runs,
                                  scorecard_view, state)
from dashboard.components.format import md
from dashboard.components.messages import show_input_error
from dashboard.components.result_words import GAP_CHOICES, partition_label


def render() -> None:
    st.title("Compare")
    st.markdown("Weigh the models against each other, across every finished run of this study: the scorecard of "
                "each run first, then overall accuracy against the accuracy of the worst-off group and against a "
                "fairness gap you choose.")
    ws = state.workspace()
    study = runs.study_or_pointer(ws)
    if study is None:
        return
    finished = runs.finished_runs(ws, study["id"])
    if not finished:
        runs.pick_run(ws, study)  # says why there is nothing to compare yet
        grid_views.grid_section(ws, study)  # a grid needs no earlier run
        return
    try:
        loaded = {run["id"]: runs.results(ws, run["id"]) for run in finished}
    except InputError as error:
        show_input_error(error)
        return
    pairs = [(run, loaded[run["id"]].report) for run in reversed(finished)]  # oldest first
    for run in finished:
        runs.one_run_notice(loaded[run["id"]], runs.run_label(run) if len(finished) > 1 else None)
    st.header("Scorecard", divider="gray")
    framing = {**(study.get("framing") or {}), **scorecard_view.measure_of_study(study)}
    newest, *older = finished  # the run a reviewer just made leads; earlier runs one click below
    if older:
        st.subheader(newest["name"])
    scorecard_view.scorecard_section(loaded[newest["id"]].report, framing, newest["name"] if older else None)
    for run in older:
        with st.expander(f"Scorecard of {run['name']}", icon=":material/history:"):
            scorecard_view.scorecard_section(loaded[run["id"]].report, framing, run["name"])

    st.header("Details", divider="gray")
    run_ids = tuple(run["id"] for run in finished)
    partitions = loaded[finished[0]["id"]].partitions
    left, right = st.columns(2)
    state.keep_option("compare_attribute", partitions, partitions[0])
    attribute = left.selectbox("Groups", partitions, key="compare_attribute", format_func=partition_label)
    gap = right.selectbox("Gap", GAP_CHOICES, format_func=GAP_NAMES.get, key="compare_gap")
    root = str(ws.root)
    frame = compare_views.table(root, run_ids, attribute, gap, pairs)
    flagged = [(run, f) for run, report in pairs for f in flagged_models(report)]
    if flagged:  # the scorecard shows each badge; the whole sentences one click below, not a wall above
        with st.expander(f"Why {len(flagged)} model{'s are' if len(flagged) != 1 else ' is'} flagged",
                         icon=":material/warning:"):
            for run, one in flagged:
                st.warning(f"{md(run['name'])}: {md(one['text'])}", icon=":material/warning:")

    with st.expander("1. Accuracy and fairness: the best trade-offs", icon=":material/scatter_plot:"):
        compare_views.tradeoff_section(frame, gap, attribute, run_ids)
    with st.expander("2. Every model, every run", icon=":material/table:"):
        compare_views.table_section(frame, gap, attribute)
    with st.expander("3. Is the difference between two models real?", icon=":material/difference:"):
        compare_views.paired_section(finished, loaded, root, attribute, gap)
    with st.expander("4. Across label fractions", icon=":material/stacked_line_chart:"):
        compare_views.fractions_section(pairs, root, run_ids, attribute, gap)
    mitigated = mitigation_views.newest_with_mitigations(finished, loaded)
    if mitigated is not None:
        with st.expander("5. What the mitigations bought and cost", icon=":material/balance:"):
            mitigation_views.tradeoff_section(loaded[mitigated["id"]].report, attribute, gap, mitigated["name"])
    federated = federated_views.newest_with_federated(finished, loaded)
    if federated is not None:
        with st.expander("6. What federated pretraining cost each site and group", icon=":material/hub:"):
            federated_views.federated_section(loaded[federated["id"]], federated["name"])
    private = privacy_views.newest_with_private(finished, loaded)
    if private is not None:
        with st.expander("7. What each privacy guarantee cost, and whom", icon=":material/lock:"):
            privacy_views.privacy_section(loaded[private["id"]].report, private["name"])
    grid_views.grid_section(ws, study)


render()
