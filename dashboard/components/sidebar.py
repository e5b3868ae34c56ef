"""The sidebar: the current study (dataset, outcome, groups compared), a study switcher and
the workspace folder. Drawn after the page, so a study saved on this run shows at once."""

from __future__ import annotations

import streamlit as st

from core.workspace.store import Workspace
from dashboard.components import state, studies
from dashboard.components.format import md


def _on_pick() -> None:
    state.set_current_study(st.session_state.get("study_picker"))


def render(ws: Workspace) -> None:
    st.markdown("#### Current study")
    problem = st.session_state.get("startup_problem")
    if problem:
        st.warning(md(problem), icon=":material/warning:")
    study = state.current_study(ws)
    if study is None:
        st.info("No study yet. Set one up on the **Data** page.", icon=":material/info:")
    else:
        facts = studies.describe(study)
        st.markdown(f"**{md(facts['name'])}**")
        st.markdown(f"Dataset: {md(facts['dataset'])}  \n"
                    f"Predicts: {md(facts['outcome'])}  \n"
                    f"Compares groups of: {md(facts['sensitive'])}  \n"
                    f"Features: {facts['features']}")
        if st.session_state.pop(studies.UNSAVED_SETUP, False):  # set by the Data page on this run
            st.info("The Data page shows a new set-up, not saved yet: this study stays the current one until "
                    "you save it.", icon=":material/edit_note:")
    all_studies = ws.list_studies()
    if len(all_studies) > 1:
        names = {s["id"]: f"{s['name']} ({s['created_at'][:16].replace('T', ' ')})" for s in all_studies}
        st.session_state["study_picker"] = study["id"] if study else None
        st.selectbox("Switch to another study", list(names), format_func=names.get, key="study_picker",
                     on_change=_on_pick)
    st.caption(f"Workspace: `{ws.root}`")
