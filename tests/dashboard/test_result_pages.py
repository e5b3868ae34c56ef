"""Embeddings, Fairness, Compare and Review & report on a finished run (a small real German
credit audit, built once per session and copied into each test's workspace), and their error
paths: no study, no finished run, a failed or a running run."""

from __future__ import annotations

import json
import shutil

import pytest
import results_artifact
import streamlit as st
from apphelpers import errors, values

from core.results import tables as core_results
from core.results import whatif
from core.results.folder import load_results
from core.results.wording import model_label
from core.workspace.store import Workspace
from dashboard.components.state import RUN_KEY

EMBEDDINGS, FAIRNESS = "app_pages/embeddings.py", "app_pages/fairness.py"
COMPARE, REVIEW = "app_pages/compare.py", "app_pages/review.py"
RESULT_PAGES = [EMBEDDINGS, FAIRNESS, COMPARE, REVIEW]


@pytest.fixture(scope="session")
def artifact(tmp_path_factory):
    return results_artifact.build(tmp_path_factory)


def model_names(artifact) -> list[str]:
    """The artifact's models in report order (the SSL strategies, then the baselines)."""
    return [m["name"] for m in json.loads((artifact / "report.json").read_text())["models"]]


def open_page(make_app, page):
    app = make_app(dataset="german")
    app.run()
    app.switch_page(page).run()
    assert not app.exception, app.exception
    return app


def with_run(make_app, workspace, artifact, page, **install):
    app = make_app(dataset="german")
    app.run()
    ws = Workspace(workspace)
    run_id = results_artifact.install(ws, ws.list_studies()[0]["id"], artifact, **install)
    app.switch_page(page).run()
    assert not app.exception, app.exception
    assert not errors(app), errors(app)
    return app, run_id


def specs(app) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def text(app) -> str:
    return " ".join(m.value for m in app.markdown).replace("\\", "")


@pytest.mark.parametrize("page", RESULT_PAGES)
def test_without_a_study_each_page_points_to_data(make_app, page):
    app = make_app()
    app.run()
    app.switch_page(page).run()
    assert not app.exception
    assert "set up a study on the Data page" in app.info[0].value


@pytest.mark.parametrize("page", [EMBEDDINGS, FAIRNESS, COMPARE])
def test_without_a_finished_run_each_page_points_to_train(make_app, page):
    app = open_page(make_app, page)
    assert any("train and audit models on the Train page" in info.value for info in app.info)


def test_a_failed_run_is_named_with_its_reason_and_a_running_one_as_under_way(make_app, workspace):
    app = open_page(make_app, FAIRNESS)
    ws = Workspace(workspace)
    study_id = ws.list_studies()[0]["id"]
    failed = ws.create_run("audit", "Broken", {}, study_id=study_id)
    ws.finish_run(failed, "failed", error="No sensitive attribute chosen")
    app.run()
    assert any("failed" in w.value and "No sensitive attribute chosen" in w.value for w in app.warning)
    ws.start_run(ws.create_run("audit", "Busy", {}, study_id=study_id))
    app.run()
    assert any("under way" in info.value for info in app.info)


def test_embeddings_side_by_side_with_hover_and_leakage(make_app, workspace, artifact):
    app, _ = with_run(make_app, workspace, artifact, EMBEDDINGS)
    charts = specs(app)
    assert [c["layout"]["title"]["text"] for c in charts] == ["Pretrained (SCARF), output layer only",
                                                              "Ordinary model (no pretraining)"]  # no code names
    left = charts[0]
    assert all(trace["type"] == "scattergl" for trace in left["data"])
    assert {trace["name"] for trace in left["data"]} == {"female", "male"}  # coloured by sex first
    assert left["data"][0]["hovertemplate"] == "%{hovertext}<extra></extra>"
    hover = left["data"][0]["hovertext"][0]
    for shown in ("sex", "age", "label", "prediction", "score"):
        assert f"{shown}: " in hover
    assert "credit_amount" not in hover and "duration" not in hover and "row_id" not in hover
    points = sum(len(values(trace["x"])) for trace in left["data"])
    assert points == json.loads((artifact / "report.json").read_text())["study"]["n_test"]
    assert "Leakage" in text(app) and "chance: 50%" in text(app)
    assert "t-interval" not in text(app) and "(SSL model)" not in text(app)  # plain words (issue 17, item 6)


def test_recolouring_regroups_the_stored_points_without_recomputing(make_app, workspace, artifact, monkeypatch):
    st.cache_data.clear()
    calls = []
    real = core_results.embedding_points
    monkeypatch.setattr(core_results, "embedding_points", lambda res, model: calls.append(model) or real(res, model))
    app, _ = with_run(make_app, workspace, artifact, EMBEDDINGS)
    before = sorted(x for trace in specs(app)[0]["data"] for x in values(trace["x"]))
    app.selectbox(key="embed_colour").set_value("error").run()
    assert not app.exception
    left = specs(app)[0]
    assert left["layout"]["meta"]["colour_by"] == "error"
    assert {t["name"] for t in left["data"]} <= {"correct", "false positive", "false negative"}
    assert sorted(x for trace in left["data"] for x in values(trace["x"])) == before
    app.selectbox(key="embed_colour").set_value("sex & age").run()
    assert sorted(calls) == ["scarf+linear", "supervised"]  # one load per model, whatever the colouring


def test_fairness_table_gaps_and_plain_language(make_app, workspace, artifact):
    app, _ = with_run(make_app, workspace, artifact, FAIRNESS)
    gap_chart = specs(app)[0]
    assert gap_chart["layout"]["meta"]["chart"] == "gap"
    assert list(gap_chart["data"][0]["x"]) == model_names(artifact)
    assert gap_chart["data"][0]["error_y"]["type"] == "data"
    words = text(app)
    assert "Against the supervised baseline" in words and "interval" in words
    # the verdicts rest on the family-adjusted tests (issue 14), the intervals are descriptions
    assert "Holm-adjusted within its family" in words and "expected by chance" in words
    table = app.dataframe[0].value
    assert list(table.columns[:3]) == ["Group", "Rows", "Accuracy"]
    assert table["Note"].str.contains("lowest accuracy").sum() >= 1
    assert "Highlighted: the group with the **lowest accuracy**" in " ".join(m.value for m in app.markdown)


def test_intersections_warn_about_small_groups(make_app, workspace, artifact):
    app, _ = with_run(make_app, workspace, artifact, FAIRNESS)
    app.selectbox(key="fair_partition").set_value("sex & age").run()
    assert not app.exception
    assert any("Small groups (fewer than 30 test rows)" in w.value for w in app.warning)
    assert app.dataframe[0].value["Note"].str.contains("small group").any()


def test_undefined_metrics_show_as_na_never_zero(make_app, workspace, artifact, tmp_path):
    copy = tmp_path / "undefined"
    shutil.copytree(artifact, copy, ignore=shutil.ignore_patterns("models", "encoder", "checkpoints"))
    report = json.loads((copy / "report.json").read_text())
    group = report["models"][0]["groups"]["sex"][0]
    group["tpr"], group["ci"]["tpr"] = None, None
    (copy / "report.json").write_text(json.dumps(report))
    app, _ = with_run(make_app, workspace, copy, FAIRNESS)
    table = app.dataframe[0].value
    assert table["True-positive rate"].iloc[0] == "n/a"


def test_a_model_no_better_than_chance_is_flagged_on_every_page_that_shows_its_numbers(make_app, workspace, artifact,
                                                                                    tmp_path):
    planted = tmp_path / "near-chance"
    shutil.copytree(artifact, planted, ignore=shutil.ignore_patterns("models", "encoder", "checkpoints"))
    report = json.loads((planted / "report.json").read_text())
    flagged = report["models"][0]
    flagged["overall"].update(balanced_accuracy=0.51, selection_rate=0.5)
    (planted / "report.json").write_text(json.dumps(report))
    expected = f"{model_label(flagged)} is not clearly better than guessing: balanced accuracy 0.51"
    for page in (FAIRNESS, COMPARE, EMBEDDINGS):
        app, _ = with_run(make_app, workspace, planted, page)
        assert any(expected in w.value.replace("\\", "") for w in app.warning), page
    assert all(expected not in w.value.replace("\\", "") for w in with_run(make_app, workspace, artifact,
                                                                           FAIRNESS)[0].warning)


def test_threshold_what_if_by_hand_and_in_one_click(make_app, workspace, artifact):
    app, run_id = with_run(make_app, workspace, artifact, FAIRNESS)
    model = app.session_state["fair_model"]
    app.slider(key=f"threshold|{run_id}|{model}|sex|female").set_value(0.8).run()
    assert not app.exception
    metrics = {m.label: m for m in app.metric}
    assert "Accuracy" in metrics and "Equalized-odds gap" in metrics
    table = app.dataframe[-1].value
    assert table.loc[table["Group"] == "female", "Selection rate: after"].iloc[0] != \
        table.loc[table["Group"] == "female", "Selection rate: before"].iloc[0]
    app.radio(key="fair_whatif_mode").set_value("fair").run()
    app.button(key="fair_button_equalized_odds").click().run()
    assert not app.exception and not errors(app)
    words = text(app)
    assert "fitted on the validation rows" in words and "*female*:" in words
    result = whatif.fair_whatif(load_results(Workspace(workspace).run_dir(run_id)), model, "sex", "equalized_odds")
    assert any("randomised" in w.value for w in app.warning) == result["randomized"]


def test_compare_pareto_table_and_paired_difference(make_app, workspace, artifact):
    app, _ = with_run(make_app, workspace, artifact, COMPARE)
    charts = {c["layout"]["meta"]["chart"]: c for c in specs(app)}
    assert set(charts) == {"pareto_worst_group_accuracy", "pareto_gap"}
    symbols = [s for trace in charts["pareto_gap"]["data"] if trace.get("mode") == "markers"
               for s in trace["marker"]["symbol"]]
    assert "diamond" in symbols
    table = app.dataframe[0].value
    assert list(table["Code name"]) == model_names(artifact)
    assert list(table["Model"])[:2] == ["Pretrained (SCARF), output layer only",
                                        "Pretrained (SCARF), output layer and normalisation statistics"]
    assert "Ordinary model (no pretraining)" in list(table["Model"])
    assert "A minus B, 95% interval" in text(app) and "Holm-adjusted within its family" in text(app)
    app.selectbox(key="compare_model_b").set_value("scarf+bn-stats").run()
    assert not app.exception and "computed now from the run's predictions" in text(app)
    assert any("other shares of labelled rows" in info.value for info in app.info)


def test_compare_draws_curves_across_label_fractions(make_app, workspace, artifact):
    app, _ = with_run(make_app, workspace, artifact, COMPARE, label_fraction=0.2)
    ws = Workspace(workspace)
    results_artifact.install(ws, ws.list_studies()[0]["id"], artifact, name="Full labels")
    app.run()
    assert not app.exception
    chart = next(c for c in specs(app) if c["layout"]["meta"]["chart"] == "fractions")
    assert sorted(values(chart["data"][0]["x"])) == [20.0, 100.0]
    assert len(app.dataframe[0].value) == 2 * len(model_names(artifact))  # every model in each of two runs


def test_review_notes_are_an_audit_trail_and_approval_signs_off(make_app, workspace, artifact):
    app, run_id = with_run(make_app, workspace, artifact, REVIEW)
    assert "Not signed off yet" in app.info[0].value

    def submit(author, body, status="draft", scope=None):
        # a form sends its widgets' values with the submit click, as the browser does
        app.text_input(key="review_author").set_value(author)
        app.text_area(key="review_body").set_value(body)
        app.selectbox(key="review_status").set_value(status)
        if scope:
            app.selectbox(key="review_scope").set_value(scope)
        app.button(key="FormSubmitter:review_note-Save note").click().run()

    submit("Dana", "")
    assert any("needs an author and some text" in e for e in errors(app))
    submit("Dana", "Gaps checked; intersections too small to judge.")
    assert any("cannot be edited or deleted" in s.value for s in app.success)
    submit("Dana", "Approved for the pilot.", "approved", run_id)
    assert not app.exception
    notes = Workspace(workspace).list_notes(Workspace(workspace).list_studies()[0]["id"])
    assert [(n["author"], n["status"], n["run_id"]) for n in notes] == [("Dana", "draft", None),
                                                                        ("Dana", "approved", run_id)]
    assert any("Signed off by **Dana**" in s.value for s in app.success)
    shown = [m.value for m in app.markdown if m.value.startswith("**draft**") or m.value.startswith("**approved**")]
    assert shown[0].startswith("**approved**")  # newest first
    assert app.session_state["review_body"] == "" and app.session_state["review_author"] == "Dana"
    # nothing to edit a saved note with (the study's intended use, for the model card, is no note)
    assert not [t for t in app.text_area if t.key not in ("review_body", "review_intended_use")]


def test_review_summary_and_report_with_the_notes(make_app, workspace, artifact):
    app, run_id = with_run(make_app, workspace, artifact, REVIEW)
    ws = Workspace(workspace)
    ws.add_note(ws.list_studies()[0]["id"], "Looks fair enough on sex.", "Eli", status="approved")
    app.run()
    assert "equalized-odds gap" in text(app)  # the summary's headline
    app.button(key="review_build").click().run()
    assert not app.exception and not errors(app)
    built = list((workspace / "reports" / run_id).glob("report-*.html"))
    assert len(built) == 1
    html = built[0].read_text()
    assert "Looks fair enough on sex." in html and "Eli" in html
    assert app.get("download_button")


ONE_RUN = "covers one training run only"


@pytest.mark.parametrize("page", [EMBEDDINGS, FAIRNESS, COMPARE])
def test_every_result_page_says_when_its_verdicts_cover_one_training_run(make_app, workspace, artifact, page):
    app, _ = with_run(make_app, workspace, artifact, page)
    assert any(ONE_RUN in w.value for w in app.warning), [w.value for w in app.warning]


@pytest.mark.parametrize("page", [EMBEDDINGS, FAIRNESS, COMPARE])
def test_no_one_run_notice_when_the_models_were_trained_several_times(make_app, workspace, artifact, page):
    app, _ = with_run(make_app, workspace, artifact, page, replicates=5)
    assert not any(ONE_RUN in w.value for w in app.warning)


# -- the meeting view (issue 17) -----------------------------------------------------------------
def _html(app) -> str:
    return " ".join(m.value for m in app.markdown if "<table" in m.value)


def test_fairness_opens_with_the_scorecard_and_keeps_every_measure_one_click_below(make_app, workspace, artifact):
    app, _ = with_run(make_app, workspace, artifact, FAIRNESS)
    headers = [h.value for h in app.header]
    assert headers.index("Scorecard") < headers.index("Details")
    table = _html(app)
    assert 'title="code name: scarf+linear"' in table and "Ordinary model (no pretraining)" in table
    assert ">scarf+linear<" not in table and "BatchNorm" not in table
    labels = [e.label for e in app.expander]
    details = ["1. Gaps between groups, per model", "2. Per-group numbers", "3. What if each group had its own threshold?"]
    assert [label for label in labels if label in details] == details
    assert "Largest gap:" in text(app) or "No model shows" in text(app)


def test_saying_the_outcome_helps_names_who_is_favoured_and_is_kept_with_the_study(make_app, workspace, artifact):
    app, _ = with_run(make_app, workspace, artifact, FAIRNESS)
    assert "is favoured" not in _html(app)  # not said yet: no one is named
    app.radio(key="fair_framing_effect").set_value("helps").run()
    assert not app.exception
    assert "is favoured" in _html(app)
    study = Workspace(workspace).list_studies()[0]
    assert study["framing"]["outcome_effect"] == "helps"
    assert "Headline measure: Equal-opportunity gap" in text(app)  # the fairness tree: an outcome that helps leads with who is missed


def test_compare_with_two_runs_names_colours_and_marks_each_run_and_writes_every_cell(make_app, workspace, artifact):
    app, _ = with_run(make_app, workspace, artifact, COMPARE)
    ws = Workspace(workspace)
    results_artifact.install(ws, ws.list_studies()[0]["id"], artifact, name="Second look")
    app.run()
    assert not app.exception
    chart = next(c for c in specs(app) if c["layout"]["meta"]["chart"] == "pareto_gap")
    markers = [t for t in chart["data"] if t.get("mode") == "markers"]
    names = [t["name"] for t in markers]
    assert len(set(names)) == len(names) == 2 * len(model_names(artifact))
    looks = {(t["marker"]["color"], t["marker"]["symbol"][0].endswith("-open")) for t in markers}
    assert len(looks) == len(markers)  # no two traces share colour and marker
    assert {s.endswith("-open") for t in markers for s in t["marker"]["symbol"]} == {True, False}
    table = app.dataframe[0].value
    assert any(m.startswith("Second look: ") for m in table["Model"])
    assert not table.isna().any().any() and "None" not in table.to_string()
    assert list(table.columns) == ["Model", "Code name", "Accuracy", "Balanced accuracy",
                                   "Worst-group accuracy", "Equalized-odds gap", "Gap minus ordinary model",
                                   "Best trade-off"]
    assert text(app).count("Largest gap:") + text(app).count("No model shows") == 2  # one scorecard per run


def test_the_review_report_is_a_model_card_titled_with_the_study_and_compares_two_audits(make_app, workspace,
                                                                                          artifact):
    app, run_id = with_run(make_app, workspace, artifact, REVIEW)
    ws = Workspace(workspace)
    study = ws.list_studies()[0]
    earlier = results_artifact.install(ws, study["id"], artifact, name="First look")
    app.run()
    assert "Headline measure of this study: Equalized-odds gap" in text(app)
    app.text_area(key="review_intended_use").input("Screening loan applications; never the final decision.").run()
    assert ws.get_study(study["id"])["framing"]["intended_use"].startswith("Screening loan")
    shown = app.selectbox(key=RUN_KEY).value
    other = earlier if shown == run_id else run_id
    app.selectbox(key="review_previous").set_value(other).run()
    app.button(key="review_build").click().run()
    assert not app.exception and not errors(app)
    html = next((workspace / "reports" / shown).glob("report-*.html")).read_text()
    assert f"<title>Fairness audit: {study['name']}</title>" in html
    first_page = html[html.index('id="scorecard"'):html.index('class="appendix"')]
    assert 'id="model-card"' in first_page and "Screening loan applications" in first_page
    assert f"What changed since {ws.get_run(other)['name']}" in first_page
    assert 'id="measure-rationale"' in html


def test_a_tiny_group_whose_interval_collapsed_is_not_shown_as_certain(make_app, workspace, artifact):
    app, run_id = with_run(make_app, workspace, artifact, FAIRNESS)
    path = Workspace(workspace).run_dir(run_id) / "report.json"
    report = json.loads(path.read_text())
    partition = next(p for p in report["models"][0]["groups"] if " & " in p)
    for model in report["models"]:
        row = model["groups"][partition][-1]
        row.update(accuracy=1.0, small=True, n=15)
        row["ci"]["accuracy"] = [1.0, 1.0]
    path.write_text(json.dumps(report))
    st.cache_data.clear()
    st.cache_resource.clear()  # the run's results are shared across sessions (runs._load)
    app.run()
    assert not app.exception
    app.selectbox(key="fair_partition").set_value(partition).run()
    table = app.dataframe[0].value
    cells = list(table["Accuracy"])
    assert "100.0% (too few rows for an interval)" in cells
    assert not any("(100.0–100.0)" in c for c in cells)


def test_an_unchanged_what_if_reads_no_change_in_grey_not_a_red_plus_zero(make_app, workspace, artifact):
    app, _ = with_run(make_app, workspace, artifact, FAIRNESS)  # by hand, every threshold at 0.5: nothing changes
    assert app.metric, "the what-if shows its metrics"
    assert {m.delta for m in app.metric} == {"no change"}
    gray = type(app.metric[0].proto).DESCRIPTOR.fields_by_name["color"].enum_type.values_by_name["GRAY"].number
    assert {m.proto.color for m in app.metric} == {gray}
    assert "The what-if is for **Pretrained (SCARF), output layer only**" in text(app).replace("\\", "")
