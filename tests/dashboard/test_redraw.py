"""A polling fragment's redraw must not turn a reviewer's click on another page into a rerun
of the page the fragment is on (dashboard/components/redraw.py).

Run against Streamlit's own request queue (`ScriptRequests`), so the tests fail if an upgrade
changes how pending requests are kept or folded."""

from __future__ import annotations

from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

from dashboard.components.redraw import rerun_pending

DATA, TRAIN = "hash-of-data-page", "hash-of-train-page"


def test_streamlit_folds_a_later_rerun_into_the_pending_one_and_keeps_the_later_page():
    """The defect redraw_page avoids: the fragment's plain st.rerun() after the click wins."""
    requests = ScriptRequests()
    requests.request_rerun(RerunData(page_script_hash=DATA))  # the reviewer clicks "Data"
    requests.request_rerun(RerunData(page_script_hash=TRAIN))  # the Train page's fragment: st.rerun()
    assert requests.on_scriptrunner_yield().rerun_data.page_script_hash == TRAIN


def test_a_pending_click_is_seen_so_the_fragment_leaves_it_alone():
    requests = ScriptRequests()
    assert not rerun_pending(requests)  # nothing waiting: the fragment may redraw the page
    requests.request_rerun(RerunData(page_script_hash=DATA))
    assert rerun_pending(requests)
    assert requests.on_scriptrunner_yield().rerun_data.page_script_hash == DATA  # the click is what runs
    assert not rerun_pending(requests)  # taken by the runner: later redraws go ahead again


def test_a_stopped_session_counts_as_pending_and_no_context_as_nothing_pending():
    requests = ScriptRequests()
    requests.request_stop()
    assert rerun_pending(requests)
    assert not rerun_pending(None)
