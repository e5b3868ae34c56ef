"""How a page reports bad input: one `st.error` with what is wrong and how to fix it."""

from __future__ import annotations

import streamlit as st

from core.errors import InputError
from dashboard.components.format import md


def show_input_error(error: InputError) -> None:
    """Show an InputError to the reviewer (its text names the problem and the fix)."""
    st.error(md(str(error)), icon=":material/error:")
