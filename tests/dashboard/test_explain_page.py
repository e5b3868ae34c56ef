"""The Explain page on a finished run (the synthetic run of tests/explain_artifact.py, built once
per session and copied into each test's workspace as a succeeded audit): LIME chart, stability,
flips, two models, flip rates, the subgroup job, filters; and the path without a finished run."""

from __future__ import annotations

import json
import shutil

import pytest
from apphelpers import errors, values

import explain_artifact
from core.explain import explain_row, explain_row_shap, explanations_agreement, load_run
from core.workspace import jobs
from core.workspace.store import Workspace

EXPLAIN = "app_pages/explain.py"


@pytest.fixture(scope="session")
def artifact(tmp_path_factory):
    return explain_artifact.build(tmp_path_factory.mktemp("explain-page-run"))


def install(workspace, artifact) -> tuple[str, str]:
    """A study for the synthetic table and a succeeded audit run holding a copy of the artifact."""
    ws = Workspace(workspace)
    saved = json.loads((artifact / "study.json").read_text())
    study_id = ws.create_study("People", "people.csv", saved["dataset_sha256"], saved["spec"], {"source": "upload"})
    report = json.loads((artifact / "report.json").read_text())
    run_id = ws.create_run("audit", "Quick run", report["config"], study_id=study_id)
    ws.start_run(run_id)
    shutil.copytree(artifact, ws.run_dir(run_id), dirs_exist_ok=True)
    ws.finish_run(run_id, "succeeded", metrics={})
    return study_id, run_id


def open_explain(make_app, workspace, artifact):
    study_id, run_id = install(workspace, artifact)
    app = make_app(current_study_id=study_id)
    app.run()
    app.switch_page(EXPLAIN).run()
    assert not app.exception, app.exception
    assert not errors(app), errors(app)
    return app, run_id


def chart(app, name: str) -> dict:
    for element in app.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        if spec["layout"].get("meta", {}).get("chart") == name:
            return spec
    raise AssertionError(f"no {name} chart")


def page_text(app) -> str:
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption] + [s.value for s in app.success]
    parts += [w.value for w in app.warning] + [d.value.to_csv() for d in app.dataframe]
    parts += [json.dumps(json.loads(c.proto.spec)) for c in app.get("plotly_chart")]
    return " ".join(parts).replace("\\", "")


def test_without_a_finished_run_the_page_points_to_train(make_app, workspace):
    app = make_app(dataset="german")
    app.run()
    app.switch_page(EXPLAIN).run()
    assert not app.exception
    assert app.title[0].value == "Explain"
    assert any("train and audit models on the Train page" in info.value for info in app.info)
    assert not app.get("plotly_chart")


def test_a_model_no_better_than_chance_is_flagged_beside_its_explanations(make_app, workspace, artifact, tmp_path):
    planted = tmp_path / "near-chance"
    shutil.copytree(artifact, planted)
    report = json.loads((planted / "report.json").read_text())
    flagged = next(m for m in report["models"] if m["name"] == "scarf+linear")  # the page's first model
    flagged.setdefault("overall", {}).update(balanced_accuracy=0.5, selection_rate=0.5)  # the artifact has none
    (planted / "report.json").write_text(json.dumps(report))
    app, _ = open_explain(make_app, workspace, planted)
    expected = "Pretrained (SCARF), output layer only is not clearly better than guessing: balanced accuracy 0.50"
    assert any(expected in w.value.replace("\\", "") for w in app.warning)
    app.selectbox(key="explain_model").set_value(next(m["name"] for m in report["models"]
                                                      if m["name"] != "scarf+linear")).run()
    assert not app.exception and all(expected not in w.value.replace("\\", "") for w in app.warning)


def test_a_finished_run_shows_the_explanation_flips_comparison_and_flip_rates(make_app, workspace, artifact):
    app, _ = open_explain(make_app, workspace, artifact)
    assert app.selectbox(key="explain_model").value == "scarf+linear"  # the first SSL model
    lime = chart(app, "lime_weights")
    bars = lime["data"][0]
    weights = values(bars["x"])
    assert bars["orientation"] == "h" and len(weights) == 5
    assert bars["marker"]["color"] == ["#2E7D32" if w >= 0 else "#C62828" for w in weights]
    assert "signal" in bars["y"][-1]  # the largest weight is drawn at the top
    assert app.success and "Stable" in app.success[0].value
    flips = next(d.value for d in app.dataframe if "Decision changes" in d.value.columns)
    assert set(flips["Attribute"]) == {"sex", "age"} and set(flips["Decision changes"]) == {"no"}
    comparison = chart(app, "model_comparison")
    assert [trace["name"] for trace in comparison["data"]] == ["Pretrained (SCARF), output layer only",
                                                                "Ordinary model (no pretraining)"]  # plain names
    assert [trace["hovertext"] for trace in comparison["data"]] == ["code name: scarf+linear", "code name: supervised"]
    rates = next(d.value for d in app.dataframe if "Test rows" in d.value.columns)
    assert {"scarf+linear", "supervised", "scarf+mixed"} <= set(rates.columns)
    assert set(rates["scarf+linear"]) == {"0.0%"}  # blind to both attributes
    assert (rates[rates["Attribute"] == "sex"]["supervised"] != "0.0%").all()
    text = page_text(app)
    assert "email" not in text and "example.org" not in text  # personal data never shown


def test_filters_and_row_search(make_app, workspace, artifact):
    app, _ = open_explain(make_app, workspace, artifact)
    app.selectbox(key="explain_filter_sex").set_value("Female").run()
    options = app.selectbox(key="explain_row").options
    assert options and all("Female" in option for option in options)
    row = int(app.selectbox(key="explain_row").value)
    app.selectbox(key="explain_model").set_value("supervised").run()
    assert not app.exception
    app.text_input(key="explain_row_search").input(str(row)).run()
    assert len(app.selectbox(key="explain_row").options) == 1
    app.text_input(key="explain_row_search").input("999999").run()
    assert not app.exception
    assert any("not a test row" in w.value for w in app.warning)
    assert any("No test row matches" in info.value for info in app.info)
    assert not any(json.loads(c.proto.spec)["layout"].get("meta", {}).get("chart") == "lime_weights"
                   for c in app.get("plotly_chart"))


def test_the_subgroup_aggregate_runs_as_a_background_job(make_app, workspace, artifact, monkeypatch):
    started = []
    monkeypatch.setattr(jobs, "ensure_worker", lambda ws: started.append(ws) or True)
    app, run_id = open_explain(make_app, workspace, artifact)
    app.selectbox(key="explain_subgroup_rows").set_value(25).run()
    app.button(key="explain_subgroup_start").click().run()
    assert not app.exception and started
    ws = Workspace(workspace)
    [job] = ws.list_runs(kind="explain-subgroup")
    assert job["status"] == "queued" and job["config"]["audit_run_id"] == run_id
    assert job["config"]["rows_per_group"] == 25 and job["config"]["attribute"] == "sex"
    assert app.get("progress")  # waiting for the worker
    assert jobs.execute(ws, ws.claim_next_run()) == "succeeded"
    app.run()
    assert not app.exception
    subgroup = chart(app, "subgroup")
    assert {trace["name"].split(" (")[0] for trace in subgroup["data"]} == {"Female", "Male"}
    assert any("Clear difference" in d.value.columns for d in app.dataframe)


def test_the_page_says_when_its_verdicts_cover_one_training_run(make_app, workspace, artifact):
    app, _ = open_explain(make_app, workspace, artifact)
    assert json.loads((artifact / "report.json").read_text()).get("replicates", 1) == 1
    assert any("covers one training run only" in w.value for w in app.warning)


def test_shap_beside_lime_with_their_agreement_and_the_flip_explained(make_app, workspace, artifact):
    app, _ = open_explain(make_app, workspace, artifact)
    assert app.radio(key="explain_explainer").value == "lime"  # today's page by default
    assert not any(json.loads(c.proto.spec)["layout"].get("meta", {}).get("chart") == "shap_values"
                   for c in app.get("plotly_chart"))
    # "supervised" (logit 3 s + 4 [Female] - 2): its plain label is its own (the two SCARF models share one,
    # which AppTest cannot tell apart on a rerun)
    app.selectbox(key="explain_model").set_value("supervised").run()
    app.radio(key="explain_explainer").set_value("shap").run()
    assert not app.exception and not errors(app), errors(app)
    assert app.selectbox(key="explain_model").value == "supervised"
    bars = chart(app, "shap_values")["data"][0]
    by_feature = {label.split(" = ")[0]: v for label, v in zip(bars["y"], values(bars["x"]))}
    assert set(by_feature) == {"signal", "sex", "age", "region", "noise"}
    assert by_feature["signal"] != 0 and by_feature["sex"] != 0  # what the model reads
    assert by_feature["age"] == by_feature["region"] == by_feature["noise"] == 0  # what it does not
    assert not any(json.loads(c.proto.spec)["layout"].get("meta", {}).get("chart") == "lime_weights"
                   for c in app.get("plotly_chart"))
    assert any("add up to" in c.value for c in app.caption)
    flip = next(d.value for d in app.dataframe if "SHAP before" in d.value.columns)
    assert set(flip.columns) == {"Feature", "Value (before → after)", "SHAP before", "SHAP after"}
    sex = flip[flip["Feature"] == "sex"].iloc[0]
    assert sex["SHAP before"] * sex["SHAP after"] < 0  # +4 on the logit for one group only: the sign turns

    app.radio(key="explain_explainer").set_value("both").run()
    assert not app.exception and not errors(app), errors(app)
    chart(app, "lime_weights"), chart(app, "shap_values")
    row = int(app.selectbox(key="explain_row").value)
    ctx = load_run(artifact)
    expected = explanations_agreement(explain_row(ctx, row, "supervised").to_dict()["weights"],
                                      explain_row_shap(ctx, row, "supervised").to_dict()["values"])
    sentence = next(m.value for m in [*app.info, *app.success] if "LIME and SHAP" in m.value)
    assert ("rank correlation" in sentence) == (expected["spearman"] is not None)
    listed = [m.value for m in app.markdown if "counts it among the top" in m.value or "opposite" in m.value]
    shown = {line.split("**")[1] for text in listed for line in text.splitlines()}
    assert shown == {d["feature"] for d in expected["disagreements"]}
    assert ("They disagree on:" in sentence) == bool(expected["disagreements"])
    flip = next(d.value for d in app.dataframe if "SHAP before" in d.value.columns)
    assert {"LIME before", "LIME after", "SHAP before", "SHAP after"} <= set(flip.columns)
    assert "email" not in page_text(app) and "example.org" not in page_text(app)


def test_the_shap_subgroup_aggregate_runs_as_its_own_job(make_app, workspace, artifact, monkeypatch):
    monkeypatch.setattr(jobs, "ensure_worker", lambda ws: True)
    app, run_id = open_explain(make_app, workspace, artifact)
    app.radio(key="explain_explainer").set_value("shap").run()
    app.selectbox(key="explain_subgroup_rows").set_value(25).run()
    app.button(key="explain_subgroup_start_shap").click().run()
    assert not app.exception
    ws = Workspace(workspace)
    [job] = ws.list_runs(kind="explain-subgroup")
    assert job["config"]["explainer"] == "shap" and job["config"]["audit_run_id"] == run_id
    assert jobs.execute(ws, ws.claim_next_run()) == "succeeded"
    app.run()
    assert not app.exception
    subgroup = chart(app, "subgroup")
    assert {trace["name"].split(" (")[0] for trace in subgroup["data"]} == {"Female", "Male"}
    assert any("the size of its SHAP value" in c.value for c in app.caption)


def test_the_agreement_reads_in_plain_words():
    from dashboard.components import explain_views as views

    result = {"k": 5, "features": ["age", "sex", "hours"], "spearman": 0.5,
              "disagreements": [{"feature": "age", "reason": "sign", "lime": 0.2, "shap": -0.1},
                                {"feature": "hours", "reason": "top_shap_only", "lime": 0.0, "shap": 0.3}]}
    assert views.agreement_sentence(result).startswith("LIME and SHAP partly agree on which features matter most")
    assert "rank correlation 0.50 over the 3 features either counts among its top 5" in views.agreement_sentence(result)
    assert views.disagreement_lines(result) == [
        "- **age**: they push in opposite directions (LIME +0.200, SHAP -0.100)",
        "- **hours**: only SHAP counts it among the top (LIME +0.000, SHAP +0.300)"]
    assert "largely agree" in views.agreement_sentence({**result, "spearman": 0.9})
    assert "disagree about" in views.agreement_sentence({**result, "spearman": -0.2})
    assert "single out sex" in views.agreement_sentence({**result, "features": ["sex"], "spearman": None})
