"""core.results (tables, compare, whatif, signoff), core.results.folder's loading and core.workspace.run_progress:
the tables the result pages draw, on a small real run (German credit, tiny settings; built once per
session) and on hand-made reports."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import results_artifact

from core.results import compare, signoff, tables, whatif
from core.audit.comparison import paired_gap_differences
from core.audit.thresholds import optimize_thresholds
from core.errors import InputError
from core.results import folder
from core.workspace.run_progress import loss_curves, queue_position, run_progress

EO = "equalized_odds_difference"
DP = "demographic_parity_difference"


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    return results_artifact.build(tmp_path_factory)


@pytest.fixture(scope="session")
def res(run_dir):
    return folder.load_results(run_dir)


def test_load_results_reads_every_artifact(res):
    # the MLPs, then the classical baselines (core.learning.classical), which have no map
    assert res.models[:3] == ["scarf+linear", "scarf+bn-stats", "supervised"]
    assert [res.view.model(m).strategy for m in res.models[3:]] == ["classical"] * len(res.models[3:])
    assert res.sensitive == ["sex", "age"]
    assert res.partitions == ["sex", "age", "sex & age"]
    n_test = res.report["study"]["n_test"]
    assert len(res.predictions) == n_test and len(res.validation) == res.report["study"]["n_validation"]
    assert set(res.embeddings["model"]) == set(res.models[:3])
    assert res.timings["total_s"] > 0


def test_load_results_of_an_unfinished_run_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="has no report.json"):
        folder.load_results(tmp_path)
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot be read"):
        folder.load_results(tmp_path)


def test_group_table_carries_the_report_values_and_flags(res):
    table = tables.group_table(res.report, "supervised", "sex & age")
    groups = res.model("supervised")["groups"]["sex & age"]
    assert list(table["group"]) == [g["group"] for g in groups]
    for row, group in zip(table.to_dict("records"), groups, strict=True):
        assert row["n"] == group["n"] and row["small"] == group["small"]
        assert row["accuracy"] == group["accuracy"]
        assert [row["tpr_lo"], row["tpr_hi"]] == group["ci"]["tpr"]
    assert table["small"].sum() == sum(g["n"] < 30 for g in groups) > 0
    worst = table[table["worst"]]
    assert (worst["accuracy"] == min(g["accuracy"] for g in groups)).all() and len(worst) >= 1
    with pytest.raises(InputError, match="No groups 'colour'"):
        tables.group_table(res.report, "supervised", "colour")


def hand_report() -> dict:
    """Two groups; group B has no truly positive row (TPR undefined); the gap's interval sits
    above 0 while the signed pair interval includes 0."""
    ci = {"accuracy": [0.6, 0.8], "tpr": None, "fpr": [0.1, 0.3], "selection_rate": [0.1, 0.4],
          "precision": None, "balanced_accuracy": [0.5, 0.7]}
    group_b = {"group": "B", "n": 12, "small": True, "n_positive": 0, "n_negative": 12, "accuracy": 0.6,
               "tpr": None, "fpr": 0.2, "selection_rate": 0.2, "precision": 0.0, "balanced_accuracy": 0.6,
               "ci": ci, "ci_excluded": {"fpr": 30}}
    group_a = {**group_b, "group": "A", "n": 88, "small": False, "n_positive": 40, "n_negative": 48,
               "accuracy": 0.8, "tpr": 0.7, "ci": {**ci, "tpr": [0.6, 0.8]}, "ci_excluded": {}}
    gaps = {DP: 0.05, EO: 0.1, "worst_group_accuracy": 0.6, "ci": {DP: [0.01, 0.2], EO: [0.02, 0.3]},
            "between": {DP: {"metric": "selection_rate", "max_group": "A", "min_group": "B",
                             "pair_ci": [-0.1, 0.2]},
                        EO: {"metric": "fpr", "max_group": "A", "min_group": "B", "pair_ci": [0.01, 0.25]}}}
    model = {"name": "scarf+linear", "pretraining": "scarf", "strategy": "linear", "n_trainable_params": 10,
             "overall": {"accuracy": 0.78, "balanced_accuracy": 0.7, "roc_auc": None, "ci": {"accuracy": [0.7, 0.8]}},
             "groups": {"g": [group_a, group_b]}, "gaps": {"g": gaps},
             "compared_with_supervised": {"g": {DP: {"difference": -0.1, "ci": [-0.2, -0.01]},
                                                EO: {"difference": 0.02, "ci": [-0.05, 0.1]}}},
             "representation": {"leakage": {
                 "g": {"balanced_accuracy": 0.52, "chance": 0.5, "std": 0.02, "raw_features_balanced_accuracy": 0.9},
                 "h": {"balanced_accuracy": 0.8, "chance": 0.5, "std": 0.02, "raw_features_balanced_accuracy": 0.81},
                 "k": {"balanced_accuracy": None, "chance": None, "std": None, "note": "fewer than two groups"}}}}
    supervised = {**copy.deepcopy(model), "name": "supervised", "pretraining": None, "strategy": "supervised"}
    supervised.pop("compared_with_supervised")
    supervised["gaps"]["g"][DP] = 0.15
    return {"study": {"sensitive": ["g"], "positive_label": "yes", "label_fraction": 1.0},
            "bootstrap": {"n_boot": 200, "confidence": 0.95}, "config": {"min_group_size": 30, "seed": 0},
            "models": [model, supervised]}


def test_undefined_metrics_are_nan_never_zero_and_unreliable_intervals_are_named():
    table = tables.group_table(hand_report(), "scarf+linear", "g")
    b = table.set_index("group").loc["B"]
    assert math.isnan(b["tpr"]) and math.isnan(b["tpr_lo"]) and math.isnan(b["tpr_hi"])
    assert b["precision"] == 0.0  # a defined 0 stays 0
    assert b["unreliable"] == "fpr"  # 30 of 200 replicates undefined > 5%
    assert list(table["worst"]) == [False, True]


def test_gap_table_reads_whether_groups_differ_from_the_signed_pair_interval():
    report = hand_report()
    dp = tables.gap_table(report, "g", DP).set_index("model")
    # The gap's own interval [0.01, 0.2] excludes 0, but the signed pair interval includes it.
    assert dp.loc["scarf+linear", "lo"] > 0
    assert dp.loc["scarf+linear", "groups_differ"] == False  # noqa: E712
    assert dp.loc["scarf+linear", "vs_verdict"] == "narrower"
    assert dp.loc["supervised", "value"] == 0.15 and pd.isna(dp.loc["supervised", "vs_verdict"])
    eo = tables.gap_table(report, "g", EO).set_index("model")
    assert eo.loc["scarf+linear", "groups_differ"] == True  # noqa: E712
    assert eo.loc["scarf+linear", "vs_verdict"] == "no clear difference"


def test_verdicts_for_higher_is_better_measures():
    assert tables.verdict("worst_group_accuracy", [0.01, 0.1]) == "higher"
    assert tables.verdict("worst_group_accuracy", [-0.1, -0.01]) == "lower"
    assert tables.verdict(EO, [-0.1, -0.01]) == "narrower"
    assert tables.verdict(EO, None) is None


def test_pareto_front():
    x = [0.80, 0.85, 0.82, 0.70, float("nan")]
    y = [0.70, 0.60, 0.72, 0.50, 0.99]
    assert compare.pareto_front(x, y).tolist() == [False, True, True, False, False]
    # y is a gap (lower is better): (0.85, 0.60) has the lowest gap and the best accuracy
    assert compare.pareto_front(x, y, maximize_y=False).tolist() == [False, True, False, True, False]
    assert compare.pareto_front([0.8, 0.8], [0.5, 0.5]).tolist() == [True, True]  # ties dominate neither


def test_comparison_table_of_a_real_run(res):
    table = compare.comparison_table([({"id": "r1", "name": "run"}, res.report)], "sex", EO)
    assert list(table["model"]) == res.models
    supervised = table.set_index("model").loc["supervised"]
    entry = res.model("supervised")
    assert supervised["accuracy"] == entry["overall"]["accuracy"]
    assert supervised["worst_group_accuracy"] == entry["gaps"]["sex"]["worst_group_accuracy"]
    assert supervised["gap"] == entry["gaps"]["sex"][EO] and math.isnan(supervised["gap_vs_supervised"])
    assert table["pareto_worst_group"].any() and table["pareto_gap"].any()


def test_paired_difference_uses_the_audit_against_supervised_and_flips_its_sign(res):
    entry = res.model("scarf+linear")["compared_with_supervised"]["sex"][EO]
    forward = compare.paired_difference(res, "scarf+linear", "supervised", "sex", EO)
    assert forward["source"] == "audit" and forward["difference"] == entry["difference"]
    assert forward["ci"] == entry["ci"]
    backward = compare.paired_difference(res, "supervised", "scarf+linear", "sex", EO)
    assert backward["difference"] == -entry["difference"] and backward["ci"] == [-entry["ci"][1], -entry["ci"][0]]
    assert backward["value_a"] == entry["model_b"]
    with pytest.raises(InputError, match="same model"):
        compare.paired_difference(res, "supervised", "supervised", "sex", EO)


def test_paired_difference_between_two_ssl_models_is_computed_like_the_audit(res):
    frame = res.predictions
    computed = compare.paired_difference(res, "scarf+linear", "scarf+bn-stats", "sex & age", DP)
    assert computed["source"] == "computed" and computed["n_boot"] == 50
    direct = paired_gap_differences(frame["y_true"], frame["pred__scarf+linear"], frame["pred__scarf+bn-stats"],
                                    frame[["sex", "age"]], n_boot=50, random_state=0)["sex & age"][DP]
    assert computed["difference"] == direct["difference"] and computed["ci"] == direct["ci"]
    # the same computation against the baseline reproduces the audit's own paired comparison
    again = paired_gap_differences(frame["y_true"], frame["pred__scarf+linear"], frame["pred__supervised"],
                                   frame[["sex"]], n_boot=50, random_state=0)["sex"][EO]
    audited = res.model("scarf+linear")["compared_with_supervised"]["sex"][EO]
    assert {k: v for k, v in again.items() if k != "excludes_zero"} == \
        {k: audited[k] for k in again if k != "excludes_zero"}
    # the verdict is the family-adjusted test's (core.audit.multiplicity), not the interval's
    assert audited["excludes_zero"] == (audited["p_adjusted"] < 0.05)


def test_label_fraction_curves_take_the_newest_run_per_fraction():
    old, new, small = hand_report(), hand_report(), hand_report()
    new["models"][0]["groups"]["g"][0]["accuracy"] = 0.9
    small["study"]["label_fraction"] = 0.1
    curves = compare.label_fraction_curves([({"id": "old"}, old), ({"id": "small"}, small), ({"id": "new"}, new)],
                                           "g", "accuracy")
    assert sorted(set(curves["label_fraction"])) == [0.1, 1.0]
    full = curves[(curves["label_fraction"] == 1.0) & (curves["model"] == "scarf+linear") & (curves["group"] == "A")]
    assert full["value"].tolist() == [0.9] and full["run_id"].tolist() == ["new"]
    gaps = compare.label_fraction_curves([({"id": "x"}, old), ({"id": "y"}, small)], "g", DP)
    assert gaps["group"].isna().all() and len(gaps) == 4


def test_embedding_points_join_groups_and_outcomes_but_no_feature(res):
    points = tables.embedding_points(res, "supervised")
    assert len(points) == (res.embeddings["model"] == "supervised").sum()
    assert set(points.columns) == {"row_id", "umap_x", "umap_y", "sex", "age", "sex & age", "label", "prediction",
                                   "score", "error"}
    merged = points.merge(res.predictions, on="row_id")
    y, pred = merged["y_true"], merged["pred__supervised"]
    assert ((merged["error"] == "correct") == (y == pred)).all()
    assert ((merged["error"] == "false positive") == ((pred == 1) & (y == 0))).all()
    assert (merged["label"] == np.where(y == 1, "good", "bad")).all()  # the data's own negative label (issue 17)
    assert (merged["sex & age"] == merged["sex_x"] + " & " + merged["age_x"]).all()


def test_embedding_points_never_show_a_withheld_column(res):
    report = copy.deepcopy(res.report)
    report["withheld_columns"] = ["sex"]
    hidden = folder.RunResults(res.run_dir, report, res.predictions, res.validation, res.embeddings, {})
    points = tables.embedding_points(hidden, "supervised")
    assert "sex" not in points.columns and "sex & age" not in points.columns and "age" in points.columns
    no_map = folder.RunResults(res.run_dir, res.report, res.predictions, res.validation, None, {})
    with pytest.raises(InputError, match="without UMAP"):
        tables.embedding_points(no_map, "supervised")


def test_leakage_readings():
    table = tables.leakage_table(hand_report(), "scarf+linear").set_index("attribute")
    assert table.loc["g", "reading"] == "about chance" and table.loc["g", "vs_raw"] == "less"
    assert table.loc["h", "reading"] == "readable" and table.loc["h", "vs_raw"] == "similar"
    assert table.loc["k", "reading"] == "undefined" and math.isnan(table.loc["k", "balanced_accuracy"])


def test_manual_thresholds_of_one_half_change_nothing(res):
    result = whatif.manual_whatif(res, "supervised", "sex", {"female": 0.5, "male": 0.5})
    assert result["accuracy_cost"] == 0.0
    assert (result["y_pred"] == res.predictions["pred__supervised"].to_numpy()).all()
    gaps = whatif.whatif_gaps(result).set_index("measure")
    assert (gaps["change"].fillna(0) == 0).all()
    moved = whatif.manual_whatif(res, "supervised", "sex", {"female": 0.9, "male": 0.5})
    groups = whatif.whatif_groups(moved).set_index("group")
    assert groups.loc["female", "selection_rate_after"] < groups.loc["female", "selection_rate_before"]
    assert groups.loc["male", "selection_rate_after"] == groups.loc["male", "selection_rate_before"]


def test_fair_thresholds_are_fitted_on_validation_and_judged_on_test(res):
    result = whatif.fair_whatif(res, "supervised", "sex", "demographic_parity")
    assert result["n_fit"] == len(res.validation) and result["evaluated_on"] == "evaluate_on rows"
    assert len(result["y_pred"]) == len(res.predictions)
    val = res.validation
    direct = optimize_thresholds("demographic_parity",
                                 fit_on=(val["score__supervised"], val["y_true"], val["sex"]),
                                 evaluate_on=(res.predictions["score__supervised"], res.predictions["y_true"],
                                              res.predictions["sex"]), random_state=0)
    assert result["accuracy"] == direct["accuracy"] and result["gaps"] == direct["gaps"]
    assert set(result["rules"]) == {"female", "male"}
    assert all(whatif.describe_rule(rule) for rule in result["rules"].values())


def test_describe_rule_in_words():
    rule = {"thresholds": [{"operator": ">", "threshold": 0.4, "probability": 0.25},
                           {"operator": ">", "threshold": -math.inf, "probability": 0.75}],
            "p_constant": 0.1, "constant_positive_rate": 0.3}
    text = whatif.describe_rule(rule)
    assert "for a random 25% of the group's rows, predicted positive when the model's score is above 0.40" in text
    assert "for a random 75% of the group's rows, always predicted positive" in text
    assert "10% of rows decided by a coin" in text


def test_run_progress_eta_and_loss_curves():
    start = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    run = {"status": "running", "started_at": start.isoformat(), "progress": {"fraction": 0.25, "stage": "pretrain",
                                                                              "message": "Pretraining scarf"}}
    progress = run_progress(run, now=start + timedelta(seconds=30))
    assert progress["elapsed_s"] == 30 and progress["eta_s"] == pytest.approx(90)
    assert run_progress({**run, "progress": {"fraction": 0.01}}, now=start + timedelta(seconds=5))["eta_s"] is None
    assert run_progress({"status": "queued", "progress": None})["fraction"] is None
    events = [{"stage": "pretrain", "step": 5, "total_steps": 20, "epochs": 2, "loss": 3.0},
              {"stage": "pretrain", "step": 10, "total_steps": 20, "epochs": 2, "loss": 2.5, "val_loss": 2.7},
              {"stage": "finetune", "model": "linear", "epoch": 1, "loss": 0.6},
              {"stage": "audit", "message": "Auditing"}]
    curves = loss_curves(events)
    assert curves["pretrain"]["epoch"].tolist() == [0.5, 1.0]
    assert math.isnan(curves["pretrain"]["val_loss"][0]) and curves["pretrain"]["val_loss"][1] == 2.7
    assert curves["linear"]["loss"].tolist() == [0.6]
    assert queue_position("b", [{"id": "a"}, {"id": "b"}]) == 2 and queue_position("c", [{"id": "a"}]) is None


def test_sign_off_is_the_newest_approved_note():
    notes = [{"id": 1, "status": "approved", "author": "Ann", "created_at": "2025-01-01T10:00:00+00:00"},
             {"id": 2, "status": "changes requested", "author": "Bob", "created_at": "2025-01-02T10:00:00+00:00"},
             {"id": 3, "status": "approved", "author": "Cy", "created_at": "2025-01-03T10:00:00+00:00"}]
    assert signoff.sign_off(notes)["author"] == "Cy"
    assert signoff.sign_off(notes[1:2]) is None


def test_review_report_contains_the_notes_and_the_sign_off(res, tmp_path):
    notes = [{"id": 1, "study_id": "s", "run_id": None, "author": "Dana <b>Reviewer</b>", "status": "approved",
              "body": "Checked the gaps =1+1", "created_at": "2025-01-03T10:00:00+00:00"}]
    html_path, pdf_path = signoff.write_review_report(res, tmp_path, notes, stamp="20250103-100000")
    assert html_path.name == "report-20250103-100000.html" and pdf_path is None
    html = html_path.read_text()
    assert "Checked the gaps =1+1" in html and "Dana &lt;b&gt;Reviewer&lt;/b&gt;" in html
    assert "<b>Reviewer</b>" not in html
    assert json.loads((res.run_dir / "report.json").read_text())["study"]["dataset"] == "german"


def test_the_run_folder_names_its_columns_and_reads_a_report_with_parts_missing(res):
    assert folder.score_column("scarf+linear") == "score__scarf+linear"
    assert folder.pred_column("supervised") == "pred__supervised"
    assert folder.models_in_columns(res.predictions.columns) == res.models
    assert (folder.decisions(np.array([0.2, 0.5, 0.9])) == [0, 1, 1]).all()
    empty = folder.ReportView({})
    assert empty.models == [] and empty.sensitive == [] and empty.partitions == [] and empty.intersections == []
    assert (empty.seed, empty.min_group_size, empty.n_boot(7), empty.confidence) == (0, 30, 7, None)
    bare = folder.ModelView({"name": "m"})
    assert bare.groups("sex") == [] and bare.gaps("sex") == {} and bare.compared("sex", EO) is None
    assert bare.between("sex", EO) == {} and bare.probe("sex") == {} and bare.group("sex", "x") is None
    with pytest.raises(InputError, match="No model 'nope'"):
        res.view.model("nope")
    view = res.view
    assert view.partitions == ["sex", "age", "sex & age"] and view.intersections == ["sex & age"]
    assert view.model("supervised").gaps("sex") == res.report["models"][2]["gaps"]["sex"]
    assert view.n_boot() == 50 and view.seed == 0


def test_replicate_columns_are_no_models_and_one_replicate_says_so(res):
    names = ["scarf+linear", "supervised"]
    columns = ["row_id", "sex", "y_true"] + [folder.score_column(n, r) for r in (0, 1, 2) for n in names]
    assert folder.score_column("supervised", 2) == "score__supervised__r2"
    assert folder.pred_column("scarf+linear", 1) == "pred__scarf+linear__r1"
    assert folder.models_in_columns(columns) == names
    assert folder.replicate_columns("supervised", columns + [folder.pred_column("supervised", r) for r in (0, 1, 2)]) \
        == [(folder.score_column("supervised", r), folder.pred_column("supervised", r)) for r in (0, 1, 2)]
    assert not folder.is_replicate_column("score__model__rx") and folder.is_replicate_column("pred__m__r10")
    # The shared run was trained once: its report and summary say the verdicts cover one training run.
    assert res.report["replicates"] == 1 and res.view.one_training_run
    assert folder.ReportView({}).one_training_run  # runs made before replicates were one training run
    five = folder.ReportView({"replicates": 5})
    assert five.replicates == 5 and not five.one_training_run
    from core.results.summary import ONE_RUN_NOTICE, summarize

    items = [i for i in summarize(res.report) if i["topic"] == "replicates"]
    assert [(i["level"], i["text"]) for i in items] == [("warning", ONE_RUN_NOTICE)]
    assert "one training run only" in ONE_RUN_NOTICE
    many = [i for i in summarize({**res.report, "replicates": 5}) if i["topic"] == "replicates"]
    assert many[0]["level"] == "info" and "5 times" in many[0]["text"]
    bare = folder.ModelView({"name": "m"})
    assert bare.replicates == [] and bare.aggregate == {}
    assert [r["seed"] for r in res.view.model("supervised").replicates] == [0]
