"""The login drawn before anything else when the server is reachable from the network.

`gate()` is called by app.py before navigation: it returns True when this browser session
may see the dashboard; otherwise it draws the login form (and nothing else) and returns False.
The mode comes from `EQUISCOPE_AUTH`, set by `equiscope serve` (core/workspace/auth.py). A server
started some other way on a non-loopback address fails closed: it asks for the passphrase.

The session's reviewer (the OIDC e-mail, or the name given with the passphrase) is kept in
`st.session_state["reviewer"]`. The pages pass `reviewer()` to the store as the `actor` of what
they ask for, so that runs record who started them and only they may cancel them (unless shared
edits are on). A loopback session has no reviewer: it acts as the workspace's owner.
"""

from __future__ import annotations

import os
import time

import streamlit as st

from core.workspace import auth
from core.errors import InputError
from dashboard.components import state
from dashboard.components.messages import show_input_error

REVIEWER = "reviewer"
SIGNED_IN = "signed_in"
NAME_KEY, PASSPHRASE_KEY, _PROBLEM = "sign_in_name", "sign_in_passphrase", "_sign_in_problem"
WRONG_PASSPHRASE_DELAY_S = 1.0
"""A wrong passphrase waits this long before the answer, on top of scrypt's cost, to slow guessing."""


def mode() -> str:
    """'none', 'passphrase' or 'oidc'; 'invalid' for an unknown EQUISCOPE_AUTH."""
    value = os.environ.get(auth.AUTH_ENV, "").strip().lower()
    if value:
        return value if value in auth.MODES else "invalid"
    address = st.get_option("server.address")
    return "passphrase" if address and not auth.is_loopback(address) else "none"


def reviewer() -> str | None:
    """Who this session acts as: the signed-in reviewer, or None (the workspace's owner) when no
    sign-in is needed."""
    return st.session_state.get(REVIEWER) or None


def gate() -> bool:
    """True if this session may see the dashboard; else draw the login and return False."""
    current = mode()
    if current == "none":
        return True
    if current == "oidc":
        return _openid_connect()
    if current == "passphrase":
        return _passphrase()
    st.error(f"This server was started with an unknown login mode ({auth.AUTH_ENV}). "
             "Restart it with `equiscope serve`.", icon=":material/lock:")
    return False


def _openid_connect() -> bool:
    if st.user.get("is_logged_in"):
        st.session_state[REVIEWER] = st.user.get("email") or st.user.get("name") or "signed-in reviewer"
        return True
    st.title("Equiscope")
    st.markdown("This dashboard is shared on the network. Sign in to continue.")
    if st.button("Sign in", type="primary", icon=":material/login:"):
        st.login()
    return False


def _passphrase() -> bool:
    if st.session_state.get(SIGNED_IN) is True:
        return True
    st.title("Equiscope")
    st.markdown("This dashboard is shared on the network. Enter your name and the passphrase the person who "
                "started it gave you.")
    try:
        ws = state.workspace()
    except InputError as error:
        show_input_error(error)
        return False
    if not auth.has_passphrase(ws):
        st.error("No passphrase is set for this workspace, so nobody can sign in. Restart the server with "
                 "`equiscope serve --host ... --set-passphrase`.", icon=":material/lock:")
        return False
    with st.form("sign_in"):
        st.text_input("Your name", max_chars=80, help="Shown on the runs you start.", key=NAME_KEY)
        st.text_input("Passphrase", type="password", key=PASSPHRASE_KEY)
        st.form_submit_button("Sign in", type="primary", icon=":material/login:", on_click=_check_passphrase,
                              args=(ws,))
    problem = st.session_state.pop(_PROBLEM, None)
    if problem:
        st.error(problem, icon=":material/lock:")
    return False


def _check_passphrase(ws) -> None:
    """on_click of "Sign in": runs before the page is drawn, so the passphrase can be wiped from
    the session before anything else happens (it is never kept, shown or logged)."""
    passphrase = st.session_state.get(PASSPHRASE_KEY) or ""
    st.session_state[PASSPHRASE_KEY] = ""
    name = (st.session_state.get(NAME_KEY) or "").strip()
    if not auth.verify_passphrase(ws, passphrase):
        time.sleep(WRONG_PASSPHRASE_DELAY_S)
        st.session_state[_PROBLEM] = "Wrong passphrase."
    elif not name:
        st.session_state[_PROBLEM] = "Give your name too: it marks the runs you start."
    else:
        st.session_state[REVIEWER] = name
        st.session_state[SIGNED_IN] = True
