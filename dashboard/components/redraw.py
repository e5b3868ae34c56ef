"""A full redraw asked for by a polling fragment, without overriding the reviewer's click.

Why not plain `st.rerun()`? Inside a fragment it asks for a rerun of the page the fragment is
on. When the reviewer has just clicked another page in the sidebar, that request is still
pending, and Streamlit folds the two requests into one that keeps the *newer* page: the click
on "Data" became a rerun of Train, and the browser showed Train under the Data link until the
reviewer clicked again (seen once in the eight-reviewer Chromium test: a reviewer waited 90 s
for the Data page). A request already pending redraws the whole app anyway, so the fragment
leaves it alone.

The check reads Streamlit's own pending-request state (`ScriptRequests`, pinned version in
constraints.txt); tests/dashboard/test_redraw.py runs it against the real class, so an upgrade
that changes it fails there, not in a reviewer's browser.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequests, ScriptRequestType


def rerun_pending(requests: ScriptRequests | None) -> bool:
    """Whether a rerun or stop is already waiting for the session's script runner."""
    if requests is None:
        return False
    with requests._lock:  # the same lock Streamlit folds requests under
        return requests._state != ScriptRequestType.CONTINUE


def redraw_page() -> None:
    """Rerun the whole app from inside a fragment, unless a rerun (a click) is already pending."""
    ctx = get_script_run_ctx()
    if rerun_pending(ctx.script_requests if ctx is not None else None):
        return
    st.rerun()
