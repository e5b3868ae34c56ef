"""Data: choose a table, say what to audit in it, see its groups and risks, save a study."""

from __future__ import annotations

import streamlit as st

from core.errors import InputError
from dashboard.components import data_setup, data_source, data_views, predictions_setup, state, studies, tables
from dashboard.components.format import md
from dashboard.components.messages import show_input_error


def sync_form_with_current_study(ws) -> None:
    """Show the current study's set-up when the session starts, when the reviewer switches study, and
    when the form's values are gone (app.py keeps them across pages; should Streamlit still have
    dropped them, the form shows the current study again rather than the start-up defaults)."""
    study = state.current_study(ws)
    if study is None:
        return
    form_kept = "data_source" in st.session_state  # the source radio is drawn on every run of this page
    if st.session_state.get("_form_study") == study["id"] and form_kept:
        return
    st.session_state["_form_study"] = study["id"]
    upload = studies.stored_upload(ws, study) if study["settings"].get("source") == "upload" else None
    if study["settings"].get("source") == "upload" and upload is None:
        st.warning(f"The file of study '{md(study['name'])}' is no longer in the workspace. Upload it again.")
    data_setup.load_study_into_form(study, upload)


def save_section(ws, table: tables.Table, data) -> None:
    spec = studies.saved_spec(data)
    current = state.current_study(ws)
    just_saved = st.session_state.pop("_just_saved", None)
    if current and current["dataset_sha256"] == table.sha256 and current["spec"] == spec.to_dict():
        st.session_state[studies.UNSAVED_SETUP] = False
        if just_saved:
            st.success(just_saved, icon=":material/check_circle:")
        else:
            st.success(f"This set-up is saved as the current study, **{md(current['name'])}**. "
                       "Next, train models on it.", icon=":material/check_circle:")
        st.page_link("app_pages/train.py", label="Next: Train", icon=":material/arrow_forward:")
        return
    default = studies.default_name(table, spec)
    st.markdown("Saving records the table's fingerprint (sha256) and these choices in the workspace"
                + (", and keeps a copy of your file there." if table.source == "upload" else "."))
    name_side, button_side = st.columns([3, 1], vertical_alignment="bottom")
    name = name_side.text_input("Study name", key="study_name", placeholder=default, max_chars=120)
    if not button_side.button("Save study", type="primary", key="save_study", icon=":material/save:",
                              width="stretch"):
        return
    try:
        study_id, created = studies.save_study(ws, table, data, (name or "").strip() or default,
                                               st.session_state.get(data_source.STASH))
    except InputError as error:
        show_input_error(error)
        return
    state.set_current_study(study_id)
    st.session_state["_form_study"] = study_id
    saved = ws.get_study(study_id)
    verb = "Saved" if created else "This set-up was already saved as"
    st.session_state["_just_saved"] = (f"{verb} study **{md(saved['name'])}**; it is now the current study. "
                                       "Next, train models on it.")
    st.rerun()  # redraw the page and the sidebar with the new current study


def render() -> None:
    st.title("Data")
    st.markdown("Choose the table to audit, say which outcome the model predicts and which groups it must "
                "treat alike, then check the groups and the risks before training.")
    ws = state.workspace()
    sync_form_with_current_study(ws)

    st.header("1. The table", divider="gray")
    table = data_source.choose_table()
    if table is None:
        return
    if data_source.wants_predictions():  # the reviewer's own model's predictions: no training set-up
        predictions_setup.render(ws, table)
        return
    st.session_state[studies.UNSAVED_SETUP] = True  # until save_section finds it is the current study
    facts = data_source.column_facts(table)

    st.header("2. What to audit", divider="gray")
    spec = data_setup.choose_spec(table, facts)
    try:
        data = tables.prepared(table.sha256, tables.spec_key(spec), table.frame)
    except InputError as error:
        show_input_error(error)
        data = None

    st.subheader("Columns")
    data_views.show_columns(facts, table, data.features if data else None)
    data_views.show_notes(table, data)
    if data is None:
        return

    st.header("3. Groups and base rates", divider="gray")
    data_views.show_overview(data, table.sha256)
    data_views.show_groups(data, tables.group_profile(table.sha256, tables.spec_key(spec), table.frame), table.sha256)

    st.header("4. Proxies", divider="gray")
    data_views.show_proxies(tables.proxy_findings(table.sha256, tables.proxy_key(spec), table.frame,
                                                  tables.spec_key(spec)))

    st.header("5. Save the study", divider="gray")
    save_section(ws, table, data)


render()
