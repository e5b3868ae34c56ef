"""`equiscope explain`: the JSON contract on a synthetic run, and exit 2 with one line for a bad
row, model or run folder."""

from __future__ import annotations

import json
import shutil

import pytest

import explain_artifact
from core.cli import main as cli

CONTRACT = {"row_id", "model", "prediction", "probability", "weights", "intercept", "local_fit_r2", "stability",
            "flip"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return explain_artifact.build(tmp_path_factory.mktemp("explain-cli"))


def _test_row(run_dir) -> int:
    import pandas as pd

    return int(pd.read_parquet(run_dir / "predictions.parquet")["row_id"].iloc[0])


def test_explain_prints_the_contract_json(run_dir, capsys):
    row = _test_row(run_dir)
    code = cli.main(["explain", "--run", str(run_dir), "--row", str(row), "--num-samples", "300", "--repeats", "3"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert CONTRACT <= set(out)
    assert out["row_id"] == row and out["model"] == "scarf+linear"  # the first SSL model in report.json
    assert out["prediction"] in (0, 1) and 0 <= out["probability"] <= 1
    assert {tuple(sorted(w)) for w in out["weights"]} == {("condition", "feature", "std", "value", "weight")}
    assert [w["feature"] for w in out["weights"]][0] == "signal"
    assert {w["feature"] for w in out["weights"]} == {"sex", "age", "region", "signal", "noise"}  # no email
    assert out["stability"]["repeats"] == 3 and isinstance(out["stability"]["unstable"], bool)
    assert {f["attribute"] for f in out["flip"]} == {"sex", "age"}
    assert all({"attribute", "to", "probability"} <= set(f) for f in out["flip"])
    assert out["groups"]["sex"] in ("Female", "Male") and out["num_samples"] == 300
    assert "example.org" not in json.dumps(out)


def test_explain_model_and_proxies_options(run_dir, capsys):
    row = _test_row(run_dir)
    code = cli.main(["explain", "--run", str(run_dir), "--row", str(row), "--model", "supervised",
                     "--num-samples", "200", "--repeats", "1", "--proxies"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "supervised" and out["stability"] is None
    assert {f["with_proxies"] for f in out["flip"]} == {False, True}


@pytest.mark.parametrize("args, fragment", [
    (["--row", "99999"], "Row 99999 is not in the study's table (400 rows)"),
    (["--row", "first"], "Row 'first' is not a row number"),
    (["--row", "0", "--model", "scarf+lineer"], "No model 'scarf+lineer' in run"),
    (["--row", "0", "--num-samples", "5"], "--num-samples must be at least 10"),
])
def test_bad_row_or_model_exits_2_with_one_line(run_dir, capsys, args, fragment):
    code = cli.main(["explain", "--run", str(run_dir), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_or_incomplete_run_folder_exits_2(run_dir, tmp_path, capsys):
    assert cli.main(["explain", "--run", str(tmp_path / "nowhere"), "--row", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial, ignore=shutil.ignore_patterns("report.json"))
    assert cli.main(["explain", "--run", str(partial), "--row", "1"]) == 2
    assert "not a finished audit run (report.json missing)" in capsys.readouterr().err
    assert cli.main(["explain", "--row", "1"]) == 2
    assert "--run" in capsys.readouterr().err


def test_explainer_both_adds_shap_and_agreement_beside_lime(run_dir, capsys):
    row = _test_row(run_dir)
    code = cli.main(["explain", "--run", str(run_dir), "--row", str(row), "--model", "supervised",
                     "--num-samples", "300", "--repeats", "1", "--explainer", "both"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert CONTRACT <= set(out) and {"shap", "agreement"} <= set(out)
    values = out["shap"]["values"]
    assert {v["feature"] for v in values} == {"sex", "age", "region", "signal", "noise"}
    assert out["shap"]["base_value"] + sum(v["value"] for v in values) == pytest.approx(out["probability"], abs=1e-5)
    assert set(out["agreement"]) >= {"k", "spearman", "disagreements", "top_lime", "top_shap"}
    assert all({"shap", "weights"} <= set(flip) for flip in out["flip"])
    assert "example.org" not in json.dumps(out)


def test_explainer_shap_alone_and_lime_by_default(run_dir, capsys):
    row = _test_row(run_dir)
    assert cli.main(["explain", "--run", str(run_dir), "--row", str(row), "--explainer", "shap"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "shap" in out and "weights" not in out and "agreement" not in out
    assert out["row_id"] == row and out["model"] == "scarf+linear" and out["shap"]["values"][0]["feature"] == "signal"
    assert all("shap" in flip and "weights" not in flip for flip in out["flip"])
    assert cli.main(["explain", "--run", str(run_dir), "--row", str(row), "--num-samples", "200",
                     "--repeats", "1"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert "weights" in default and "shap" not in default and "agreement" not in default


def test_bad_explainer_exits_2_with_one_line(run_dir, capsys):
    code = cli.main(["explain", "--run", str(run_dir), "--row", "0", "--explainer", "kernel"])
    err = capsys.readouterr().err
    assert code == 2 and "Unknown explainer 'kernel'" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
