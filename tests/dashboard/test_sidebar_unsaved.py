"""Issue 17, item 10: while a new set-up is configured on the Data page, the sidebar still names the
current study and says it stays current until the new set-up is saved; saving makes the note go."""

from __future__ import annotations

NOTE = "not saved yet"


def _sidebar_notes(app) -> list[str]:
    return [info.value for info in app.sidebar.info if NOTE in info.value]


def test_the_sidebar_says_the_old_study_stays_current_until_the_new_set_up_is_saved(make_app):
    app = make_app(dataset="german")
    app.run()
    assert not app.exception, app.exception
    assert "This set-up is saved as the current study" in app.success[0].value
    assert _sidebar_notes(app) == []  # the form shows the current study: nothing to say

    app.multiselect(key="sensitive_attributes").set_value(["sex"]).run()
    assert not app.exception, app.exception
    assert len(_sidebar_notes(app)) == 1

    app.button(key="save_study").click().run()
    assert not app.exception, app.exception
    assert _sidebar_notes(app) == []
    assert "by sex" in " ".join(m.value for m in app.sidebar.markdown)  # the new study is the current one


def test_other_pages_carry_no_stale_note(make_app):
    app = make_app(dataset="german")
    app.run()
    app.multiselect(key="sensitive_attributes").set_value(["sex"]).run()
    app.switch_page("app_pages/train.py").run()
    assert not app.exception, app.exception
    assert _sidebar_notes(app) == []
