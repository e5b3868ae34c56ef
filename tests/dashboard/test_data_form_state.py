"""Widget values kept across pages, also after a fragment run (the Data page bug).

The bug, as a reviewer met it: save a German study with only 'housing', go to Train, Start,
Cancel, come back to Data: the form showed the start-up defaults (Adult; sex and race). The
cause is in how Streamlit keeps state: re-assigning a widget's key at the top of every run
(what app.py did) keeps the value only as long as full runs follow one another. A fragment run
(the Train page polls its progress in one; Cancel is a button inside it) stores the value under
the widget's element id, and the clean-up Streamlit does on a page switch, before the new page's
run starts, deletes that entry as a stale widget. `state.keep_widget_state` now also keeps a copy
under a key no widget uses and puts dropped values back from it.

The first two tests reproduce the sequence without a browser in a two-page app that uses the
dashboard's own `state` functions: a keyed fragment, rerun on its own from a button's callback,
stands in for the Train page's polling fragment. The last two use the whole app.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.workspace.store import Workspace
from dashboard.components import state

MAIN = '''
import streamlit as st
from dashboard.components import state

KEYS = ["choice", "note"]
state.keep_widget_state(KEYS)
st.session_state["full_runs"] = st.session_state.get("full_runs", 0) + 1
page = st.navigation([st.Page("form.py", default=True), st.Page("poll.py")])
try:
    page.run()
finally:
    state.remember_widget_state(KEYS)
'''
FORM = '''
import streamlit as st

st.selectbox("Choice", ["a", "b", "c"], key="choice")
if st.session_state.pop("_forget_note", False):  # like the Data page dropping the study name
    st.session_state.pop("note", None)
else:
    st.text_input("Note", key="note")
'''
POLL = '''
import streamlit as st

@st.fragment(key="progress")
def progress():
    st.session_state["fragment_runs"] = st.session_state.get("fragment_runs", 0) + 1
    st.caption("polled")

progress()

def poll_again():
    st.rerun(scope="progress")  # rerun only the fragment, as run_every does

st.button("Poll", key="poll", on_click=poll_again)
'''


def two_page_app(folder: Path) -> AppTest:
    for name, text in {"main.py": MAIN, "form.py": FORM, "poll.py": POLL}.items():
        (folder / name).write_text(text)
    return AppTest.from_file(str(folder / "main.py"), default_timeout=30)


def test_a_widget_value_survives_a_fragment_run_on_another_page_and_the_switch_back(tmp_path):
    app = two_page_app(tmp_path).run()
    app.selectbox(key="choice").select("c").run()
    app.text_input(key="note").input("housing only").run()
    app.switch_page("poll.py").run()
    full_runs = app.session_state["full_runs"]
    app.button(key="poll").click().run()  # (AppTest's tree then holds only the fragment's elements)
    assert app.session_state["full_runs"] == full_runs  # only the fragment ran: the case that lost values
    assert app.session_state["fragment_runs"] == 2
    app.switch_page("form.py").run()
    assert not app.exception
    assert app.selectbox(key="choice").value == "c"
    assert app.text_input(key="note").value == "housing only"


def test_a_value_the_page_removed_is_not_brought_back(tmp_path):
    app = two_page_app(tmp_path).run()
    app.text_input(key="note").input("old name").run()
    app.session_state["_forget_note"] = True
    app.run()
    assert "note" not in app.session_state
    app.switch_page("poll.py").run()
    app.button(key="poll").click().run()
    app.switch_page("form.py").run()
    assert app.text_input(key="note").value == ""


def test_the_data_form_shows_the_current_study_again_when_its_values_are_gone(make_app, workspace):
    app = make_app(dataset="adult")
    app.run()
    app.selectbox(key="bundled_dataset").set_value("german").run()
    app.multiselect(key="sensitive_attributes").set_value(["housing"]).run()
    app.text_input(key="study_name").input("Housing only").run()
    app.button(key="save_study").click().run()
    assert not app.exception and not app.error
    study = Workspace(workspace).get_study(app.session_state[state.CURRENT_STUDY])
    assert study["name"] == "Housing only" and study["spec"]["sensitive"] == ["housing"]

    app.switch_page("app_pages/train.py").run()
    for key in [*state.DATA_FORM_KEYS, state.KEPT]:  # everything Streamlit could drop, and the copy
        if key in app.session_state:
            del app.session_state[key]
    app.switch_page("app_pages/data.py").run()
    assert not app.exception and not app.error
    assert app.selectbox(key="bundled_dataset").value == "german"
    assert app.multiselect(key="sensitive_attributes").value == ["housing"]
    assert any("saved as the current study, **Housing only**" in box.value for box in app.success)


def test_the_app_keeps_the_form_the_run_pages_and_the_explain_page_choices(make_app):
    app = make_app(dataset="adult")
    app.run()
    for key in ("explain_seed", "fair_gap", "train_epochs"):
        app.session_state[key] = 7
    app.run()
    kept = app.session_state[state.KEPT]
    assert {"bundled_dataset", "sensitive_attributes", "target_column"} <= set(kept)
    assert kept["explain_seed"] == kept["fair_gap"] == kept["train_epochs"] == 7
    app.switch_page("app_pages/train.py").run()
    kept = app.session_state[state.KEPT]
    assert set(kept) <= set(state.KEPT_KEYS)
    assert kept["explain_seed"] == 7 and kept["bundled_dataset"] == "adult"
