"""The app as a whole: start-up study, sidebar, every page renders and says what to do first."""

from __future__ import annotations

from core.workspace.store import Workspace


def test_startup_dataset_opens_on_a_ready_study_created_from_the_card(make_app, workspace):
    app = make_app(dataset="adult")
    app.run()
    assert not app.exception
    studies = Workspace(workspace).list_studies()
    assert len(studies) == 1
    study = studies[0]
    assert (study["dataset"], study["spec"]["target"], study["spec"]["positive_label"]) == ("adult", "income", ">50K")
    assert study["spec"]["sensitive"] == ["sex", "race"]
    assert study["settings"]["source"] == "bundled"
    assert app.session_state["current_study_id"] == study["id"]
    assert "saved as the current study" in app.success[0].value
    sidebar = " ".join(m.value for m in app.sidebar.markdown).replace("\\", "")
    assert "Predicts: income = >50K" in sidebar and "Compares groups of: sex and race" in sidebar
    assert str(workspace.resolve()) in app.sidebar.caption[0].value

    again = make_app(dataset="adult")  # a second session (or a restart) reuses the study
    again.run()
    assert len(Workspace(workspace).list_studies()) == 1
    assert again.session_state["current_study_id"] == study["id"]


def test_unknown_startup_dataset_is_reported_not_raised(make_app, workspace):
    app = make_app(dataset="adultt")
    app.run()
    assert not app.exception
    warning = app.sidebar.warning[0].value.replace("\\", "")
    assert "no bundled dataset named 'adultt'" in warning and "adult, compas, german" in warning


def test_result_pages_without_a_study_point_to_the_data_page(make_app, workspace):
    app = make_app()
    app.run()
    app.switch_page("app_pages/fairness.py").run()
    assert not app.exception
    assert Workspace(workspace).list_studies() == []
    assert "set up a study on the Data page" in app.info[0].value
    assert "No study yet" in app.sidebar.info[0].value


def test_an_unusable_workspace_shows_the_reason(make_app, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("EQUISCOPE_WORKSPACE", str(blocker / "workspace"))
    app = make_app()
    app.run()
    assert not app.exception
    assert "Cannot create the workspace folder" in app.error[0].value
