"""Review & report: notes, sign-off and the stakeholder report."""

from __future__ import annotations

import streamlit as st

from dashboard.components import review_views, runs, scorecard_view, state


def render() -> None:
    st.title("Review & report")
    st.markdown("Record the review and share it: notes on the study and its runs with a status (draft, changes "
                "requested, approved), kept in the workspace as an audit trail, and a self-contained report for "
                "people who do not use Equiscope.")
    ws = state.workspace()
    study = runs.study_or_pointer(ws)
    if study is None:
        return
    all_runs = runs.audit_runs(ws, study["id"])
    notes = ws.list_notes(study["id"])

    st.header("1. Review notes", divider="gray")
    review_views.sign_off_box(notes, all_runs)
    review_views.note_form(ws, study, all_runs)
    notes = ws.list_notes(study["id"])
    review_views.notes_list(notes, all_runs)

    st.header("2. Summary of a run", divider="gray")
    picked = runs.pick_run(ws, study)
    if picked is None:
        return
    run, res = picked
    framing = {**(study.get("framing") or {}), **scorecard_view.measure_of_study(study)}
    scorecard_view.scorecard_section(res.report, framing)  # the five-minute read, as in the report
    with st.expander("The full summary, sentence by sentence", icon=":material/notes:"):
        review_views.summary(res)

    st.header("3. Stakeholder report", divider="gray")
    review_views.report_section(ws, study, run, res, notes)


render()
