"""The sidebar: the current study (dataset, outcome, groups compared), a study switcher and
the workspace folder. Drawn after the page, so a study saved on this run shows at once."""

from __future__ import annotations

import streamlit as st

from core.workspace.store import Workspace
from dashboard.components import state, studies
from dashboard.components.format import md


def picker_key(study_id: str | None) -> str:
    """The study switcher's widget key, named after the current study.

    Why not one key? A page link clicked just after saving a study (before the browser had the
    redrawn switcher) sent the switcher's old value with the click; with a single key that read as
    a pick of the old study, and its on_change switched back (seen in the eight-reviewer test: a
    reviewer's Train page showed the start-up Adult study). With the current study in the key, the
    old value belongs to a switcher no longer drawn, and `_on_pick` ignores it."""
    return f"study_picker_{study_id}"


def _on_pick(key: str) -> None:
    """Switch to the study picked in the switcher `key`, if that is the switcher now drawn.

    Streamlit keeps a removed widget's callback and calls it when a request still carries that
    widget's value (tests/dashboard/test_data_setup.py sends one): only the current study's
    switcher may switch."""
    if key == picker_key(state.current_study_id()) and key in st.session_state:
        state.set_current_study(st.session_state[key])


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
        ids, key = list(names), picker_key(study["id"] if study else None)
        st.selectbox("Switch to another study", ids, format_func=names.get, key=key, on_change=_on_pick, args=(key,),
                     index=ids.index(study["id"]) if study and study["id"] in ids else None)
    st.caption(f"Workspace: `{ws.root}`")
