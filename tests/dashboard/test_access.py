"""The login gate in front of the whole app (dashboard/components/access.py, core/workspace/auth.py).

With EQUISCOPE_AUTH=passphrase (what `equiscope serve --host 0.0.0.0` sets) a session sees a
sign-in form and nothing else: no page, no sidebar, no study created, until it gives a name
and the right passphrase. A wrong passphrase gives an error and still nothing else. With
EQUISCOPE_AUTH=oidc it sees a "Sign in" button until Streamlit reports a logged-in user.
"""

from __future__ import annotations

import pytest
from apphelpers import errors

from core.workspace import auth, jobs
from core.workspace.store import Workspace

PASSPHRASE = "seven purple elephants dance"


def locked(app) -> None:
    """Only the gate was drawn: the app's title, its text, the form or button, maybe an error."""
    assert not app.exception
    assert [t.value for t in app.title] == ["Equiscope"]
    assert not app.sidebar.children
    assert not app.radio and not app.selectbox and not app.dataframe and not app.get("plotly_chart")
    assert "current_study_id" not in app.session_state  # main() stopped at the gate


@pytest.fixture
def passphrase_app(make_app, workspace, monkeypatch):
    monkeypatch.setenv(auth.AUTH_ENV, "passphrase")
    auth.set_passphrase(Workspace(workspace), PASSPHRASE)
    app = make_app(dataset="adult")
    app.run()
    return app


def sign_in(app, name: str, passphrase: str):
    app.text_input[0].input(name)
    app.text_input[1].input(passphrase)
    app.button[0].click()
    return app.run()


def test_passphrase_mode_shows_only_the_sign_in_form(passphrase_app, workspace):
    locked(passphrase_app)
    assert [field.label for field in passphrase_app.text_input] == ["Your name", "Passphrase"]
    assert passphrase_app.text_input[1].proto.type == passphrase_app.text_input[1].proto.PASSWORD
    assert Workspace(workspace).list_studies() == []  # not even the start-up study is made before sign-in


def test_a_wrong_passphrase_is_an_error_and_nothing_else(passphrase_app, workspace):
    sign_in(passphrase_app, "Ana", "seven purple elephants")
    locked(passphrase_app)
    assert [e.value for e in passphrase_app.error] == ["Wrong passphrase."]
    assert "seven purple elephants" not in repr(passphrase_app.session_state._state)  # the form was cleared
    assert passphrase_app.text_input[1].value == ""
    assert "signed_in" not in passphrase_app.session_state
    assert Workspace(workspace).list_studies() == []
    passphrase_app.run()  # and a plain rerun does not let it through either
    locked(passphrase_app)


def test_the_right_passphrase_opens_the_app_for_that_reviewer(passphrase_app, workspace):
    sign_in(passphrase_app, "  Ana Silva ", PASSPHRASE)
    assert not passphrase_app.exception
    assert passphrase_app.title[0].value == "Data"
    assert passphrase_app.session_state["reviewer"] == "Ana Silva"
    assert len(Workspace(workspace).list_studies()) == 1
    shown = " ".join(str(element.value) for element in passphrase_app.main.children.values()
                     if hasattr(element, "value"))
    assert PASSPHRASE not in shown
    assert PASSPHRASE not in repr(passphrase_app.session_state._state)  # widget state included
    passphrase_app.run()  # stays signed in for the session
    assert passphrase_app.title[0].value == "Data"


def test_a_signed_in_reviewer_owns_the_runs_they_start_and_cannot_cancel_anothers(passphrase_app, workspace,
                                                                                  monkeypatch):
    monkeypatch.setattr(jobs, "ensure_worker", lambda ws: False)  # no worker: the runs stay queued
    app = sign_in(passphrase_app, "Ana", PASSPHRASE)
    app.switch_page("app_pages/train.py").run()
    app.button(key="train_start").click().run()
    ws = Workspace(workspace)
    (mine,) = ws.list_runs(kind="audit")
    assert mine["owner"] == "Ana"
    theirs = ws.create_run("audit", "Bo's run", {}, study_id=mine["study_id"], actor="Bo")
    app.run()
    app.button(key=f"cancel_{theirs}").click().run()
    assert not app.exception
    assert any("started by Bo; only they can cancel it" in error for error in errors(app))
    assert ws.get_run(theirs)["status"] == "queued" and not ws.get_run(theirs)["cancel_requested"]
    app.button(key=f"cancel_{mine['id']}").click().run()
    assert ws.get_run(mine["id"])["status"] == "cancelled"


def test_a_name_is_required(passphrase_app):
    sign_in(passphrase_app, "   ", PASSPHRASE)
    locked(passphrase_app)
    assert "Give your name" in passphrase_app.error[0].value


def test_without_a_stored_passphrase_nobody_gets_in(make_app, monkeypatch):
    monkeypatch.setenv(auth.AUTH_ENV, "passphrase")
    app = make_app()
    app.run()
    locked(app)
    assert "No passphrase is set" in app.error[0].value and not app.text_input


def test_an_unknown_mode_fails_closed(make_app, monkeypatch):
    monkeypatch.setenv(auth.AUTH_ENV, "off")
    app = make_app()
    app.run()
    assert not app.exception and "unknown login mode" in app.error[0].value
    assert not app.title and "current_study_id" not in app.session_state


def test_oidc_mode_asks_to_sign_in_until_streamlit_has_a_user(make_app, monkeypatch):
    monkeypatch.setenv(auth.AUTH_ENV, "oidc")
    app = make_app()
    app.user = {"is_logged_in": False}
    app.run()
    locked(app)
    assert [b.label for b in app.button] == ["Sign in"]
    app.user = {"is_logged_in": True, "email": "ana@example.org", "name": "Ana"}
    app.run()
    assert not app.exception and app.title[0].value == "Data"
    assert app.session_state["reviewer"] == "ana@example.org"


def test_loopback_serving_needs_no_sign_in(make_app, monkeypatch):
    monkeypatch.setenv(auth.AUTH_ENV, "none")
    app = make_app()
    app.run()
    assert not app.exception and app.title[0].value == "Data"
