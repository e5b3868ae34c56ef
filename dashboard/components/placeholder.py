"""Pages whose engine is not built yet say what they will show and what to do first."""

from __future__ import annotations

import streamlit as st

from dashboard.components import state
from dashboard.components.format import md

NOT_YET = "This step is not available in this version of Equiscope yet; the page fills in as the engine lands."


def render(title: str, what: str, shows: list[str], first: str, first_page: str, first_label: str) -> None:
    """`what`: one sentence on the step; `shows`: what will appear; `first`: what the reviewer
    must do before this page has anything to show, with a link to the page where they do it."""
    st.title(title)
    st.markdown(what)
    st.markdown("**What you will see here**\n\n" + "\n".join(f"- {line}" for line in shows))
    study = state.current_study(state.workspace())
    if study is None:
        st.info("**First:** set up a study on the Data page: choose a table, its outcome and the groups to compare.",
                icon=":material/arrow_forward:")
        st.page_link("app_pages/data.py", label="Go to Data", icon=":material/table_chart:")
    else:
        st.info(f"**First:** {first}", icon=":material/arrow_forward:")
        st.page_link(first_page, label=first_label, icon=":material/arrow_forward:")
        st.caption(f"Current study: {md(study['name'])}.")
    st.caption(NOT_YET)
