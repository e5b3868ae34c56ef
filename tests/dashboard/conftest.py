"""AppTest helpers: each test gets its own temporary workspace and a fresh app session.

Streamlit's data caches are per process, so the Adult profile is computed once for the whole
suite (a few seconds in the first test that shows it) and read from the cache afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
TIMEOUT_S = 60


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "workspace"
    monkeypatch.setenv("EQUISCOPE_WORKSPACE", str(root))
    monkeypatch.delenv("EQUISCOPE_DATASET", raising=False)
    return root


@pytest.fixture
def make_app(workspace, monkeypatch) -> Callable[..., AppTest]:
    """`make_app(dataset="adult", **session_state)`: an AppTest of the whole app, not yet run."""

    def make(dataset: str | None = None, **session_state) -> AppTest:
        if dataset:
            monkeypatch.setenv("EQUISCOPE_DATASET", dataset)
        app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
        for key, value in session_state.items():
            app.session_state[key] = value
        return app

    return make
