"""Equiscope dashboard: one page per step of a fairness audit (`equiscope serve` starts it).

The workspace comes from EQUISCOPE_WORKSPACE and the start-up dataset from EQUISCOPE_DATASET
(see dashboard/components/state.py).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import InputError
from dashboard.components import access, sidebar, state, studies
from dashboard.components.messages import show_input_error
from dashboard.components.state import KEPT_KEYS

# The tab icon is a file served by this server: a ":material/...:" page icon makes the browser fetch
# an SVG from a Google font server (nothing the app serves or fetches may leave the machine).
st.set_page_config(layout="wide", page_title="Equiscope", page_icon=str(Path(__file__).parent / "icon.png"))
state.keep_widget_state(KEPT_KEYS)  # widget values that survive a visit to another page (components/state.py)

PAGES = [
    st.Page("app_pages/data.py", title="Data", icon=":material/table_chart:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    st.Page("app_pages/fairness.py", title="Fairness", icon=":material/balance:"),
    st.Page("app_pages/explain.py", title="Explain", icon=":material/lightbulb:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("app_pages/review.py", title="Review & report", icon=":material/rate_review:"),
]


def main() -> None:
    if not access.gate():  # served on the network: sign in first, nothing else is drawn until then
        return
    page = st.navigation(PAGES)
    try:
        ws = state.workspace()
    except InputError as error:
        show_input_error(error)
        return
    if state.CURRENT_STUDY not in st.session_state and not state.study_from_address(ws):
        st.session_state["startup_problem"] = studies.choose_startup_study(ws)
    state.on_page_entry(page.title, KEPT_KEYS)
    slot = st.sidebar.container()
    try:
        page.run()
        with slot:
            sidebar.render(ws)
        state.keep_study_in_address()
    finally:  # also when st.rerun cuts the run short: a key the page removed must stay removed
        state.remember_widget_state(KEPT_KEYS)


main()
