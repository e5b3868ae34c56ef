"""The end-to-end audit: output contracts, determinism, agreement with fairlearn, CLI output."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (MetricFrame, demographic_parity_difference, equalized_odds_difference,
                               false_positive_rate, selection_rate, true_positive_rate)
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from core.run.config import AuditConfig
from core.run.pipeline import SCRATCH, run_audit

TINY = dict(data="german", target="credit", sensitive=["sex", "age"], positive="good", epochs=1,
            finetune_epochs=2, n_boot=30, strategies=["linear", "bn-stats"], umap=True, workers=1,
            encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16}, replicates=1,
            baselines=[])  # the classical baselines' audit: tests/unit/test_baselines_pipeline.py


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit")
    run_audit(AuditConfig(**TINY), out)
    return out


@pytest.fixture(scope="module")
def replicated_dir(tmp_path_factory):
    """The same audit with two training replicates of every model."""
    out = tmp_path_factory.mktemp("audit-r2")
    run_audit(AuditConfig(**{**TINY, "replicates": 2}), out)
    return out


def test_outputs_follow_the_contract(audit_dir):
    report = json.loads((audit_dir / "report.json").read_text())
    assert set(report) >= {"equiscope_version", "study", "models"}
    study = report["study"]
    assert {k: study[k] for k in ("dataset", "target", "positive_label", "sensitive", "label_fraction", "seed")} == {
        "dataset": "german", "target": "credit", "positive_label": "good", "sensitive": ["sex", "age"],
        "label_fraction": 1.0, "seed": 0}
    assert len(study["dataset_sha256"]) == 64 and study["n_test"] == 200
    names = [m["name"] for m in report["models"]]
    assert names == ["scarf+linear", "scarf+bn-stats", "supervised"]
    baseline = report["models"][-1]
    assert baseline["pretraining"] is None and baseline["strategy"] == "supervised"
    for model in report["models"]:
        assert set(model["overall"]) >= {"n", "accuracy", "balanced_accuracy", "roc_auc"}
        assert set(model["groups"]) == {"sex", "age", "sex & age"}
        row = model["groups"]["sex"][0]
        assert set(row) >= {"group", "n", "accuracy", "tpr", "fpr", "selection_rate", "ci"}
        assert set(row["ci"]) >= {"accuracy", "tpr", "fpr", "selection_rate"}
        assert set(model["gaps"]["sex"]) >= {"demographic_parity_difference", "equalized_odds_difference",
                                             "equal_opportunity_difference", "accuracy_difference",
                                             "worst_group_accuracy", "mean_subgroup_gap"}
        leak = model["representation"]["leakage"]["sex"]
        assert set(leak) >= {"balanced_accuracy", "chance"} and leak["chance"] == 0.5
    predictions = pd.read_parquet(audit_dir / "predictions.parquet")
    expected = ["row_id", "sex", "age", "y_true"] + [f"{p}__{n}" for n in names for p in ("score", "pred")]
    assert list(predictions.columns) == expected and len(predictions) == 200
    assert set(predictions["y_true"]) == {0, 1} and predictions["row_id"].is_unique
    assert (predictions[[f"pred__{n}" for n in names]].isin([0, 1])).all().all()
    html = (audit_dir / "report.html").read_text()
    assert "scarf+bn-stats" in html and 'src="http' not in html
    assert not (audit_dir / SCRATCH).exists()  # the tasks' on-disk rows are removed with the run's end


def test_numbers_agree_exactly_with_fairlearn_from_predictions(audit_dir):
    report = json.loads((audit_dir / "report.json").read_text())
    predictions = pd.read_parquet(audit_dir / "predictions.parquet")
    y = predictions["y_true"].to_numpy()
    for model in report["models"]:
        pred = predictions[f"pred__{model['name']}"].to_numpy()
        score = predictions[f"score__{model['name']}"].to_numpy()
        assert model["overall"]["accuracy"] == accuracy_score(y, pred)
        assert model["overall"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
        assert model["overall"]["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
        for key, columns in (("sex", ["sex"]), ("age", ["age"]), ("sex & age", ["sex", "age"])):
            sensitive = predictions[columns]
            frame = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate,
                                         "tpr": true_positive_rate, "fpr": false_positive_rate},
                                y_true=y, y_pred=pred, sensitive_features=sensitive)
            for row in model["groups"][key]:
                index = tuple(row["values"][c] for c in columns)
                expected = frame.by_group.loc[index if len(index) > 1 else index[0]]
                assert row["n"] == int((sensitive.astype(str).agg(" & ".join, axis=1) == row["group"]).sum())
                assert row["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-12)
                assert row["selection_rate"] == pytest.approx(expected["selection_rate"], abs=1e-12)
                for metric in ("tpr", "fpr"):  # fairlearn says 0 where we say undefined (None)
                    if row[metric] is not None:
                        assert row[metric] == pytest.approx(expected[metric], abs=1e-12)
            gaps = model["gaps"][key]["all_groups"]  # fairlearn's gaps are over every group, so are these
            if all(r["tpr"] is not None and r["fpr"] is not None for r in model["groups"][key]):
                assert gaps["equalized_odds_difference"] == pytest.approx(
                    equalized_odds_difference(y, pred, sensitive_features=sensitive), abs=1e-12)
            assert gaps["demographic_parity_difference"] == pytest.approx(
                demographic_parity_difference(y, pred, sensitive_features=sensitive), abs=1e-12)
            assert gaps["worst_group_accuracy"] == pytest.approx(frame.group_min()["accuracy"], abs=1e-12)


def test_same_seed_gives_an_identical_report_in_one_process_or_two(replicated_dir, tmp_path):
    """The fixture trained and audited two replicates of the models here, one by one; this run
    in two worker processes (pretraining here, the fine-tunings of both replicates there)."""
    run_audit(AuditConfig(**{**TINY, "replicates": 2, "workers": 2}), tmp_path)
    ours = json.loads((tmp_path / "report.json").read_text())
    theirs = json.loads((replicated_dir / "report.json").read_text())
    ours["config"].pop("workers"), theirs["config"].pop("workers")
    assert ours == theirs
    for name in ("predictions.parquet", "embeddings.parquet"):
        assert pd.read_parquet(tmp_path / name).equals(pd.read_parquet(replicated_dir / name))


def test_replicates_are_written_with_their_seeds_and_aggregate(audit_dir, replicated_dir):
    from core.results.folder import load_results
    from core.run.config import replicate_seeds

    report = json.loads((replicated_dir / "report.json").read_text())
    assert report["replicates"] == 2 and json.loads((audit_dir / "report.json").read_text())["replicates"] == 1
    seeds = replicate_seeds(0, 2)
    assert seeds[0] == 0 and len(set(seeds)) == 2
    predictions = pd.read_parquet(replicated_dir / "predictions.parquet")
    names = [m["name"] for m in report["models"]]
    plain = ["row_id", "sex", "age", "y_true"] + [f"{p}__{n}" for n in names for p in ("score", "pred")]
    assert list(predictions.columns) == plain + [f"{p}__{n}__r1" for n in names for p in ("score", "pred")]
    assert load_results(replicated_dir).models == names  # replicate columns are no models
    y = predictions["y_true"].to_numpy()
    for model in report["models"]:
        name = model["name"]
        assert [r["seed"] for r in model["replicates"]] == seeds
        first, second = model["replicates"]
        assert first["overall"]["accuracy"] == model["overall"]["accuracy"]  # replicate 0 is the model shown
        assert first["gaps"]["sex"]["equalized_odds_difference"] == model["gaps"]["sex"]["equalized_odds_difference"]
        assert second["overall"]["accuracy"] == accuracy_score(y, predictions[f"pred__{name}__r1"])
        # another seed trains another model
        assert not np.array_equal(predictions[f"score__{name}"], predictions[f"score__{name}__r1"])
        overall = model["aggregate"]["overall"]
        assert set(overall) == {"accuracy", "balanced_accuracy", "roc_auc"}
        values = [r["overall"]["accuracy"] for r in model["replicates"]]
        assert overall["accuracy"]["mean"] == pytest.approx(np.mean(values))
        assert (overall["accuracy"]["min"], overall["accuracy"]["max"]) == (min(values), max(values))
        assert overall["accuracy"]["sd"] == pytest.approx(np.std(values, ddof=1))
        gaps = model["aggregate"]["gaps"]
        assert set(gaps) == set(model["gaps"])
        eo = gaps["sex"]["equalized_odds_difference"]
        assert set(eo) >= {"mean", "sd", "min", "max", "ci"} and eo["n_replicates"] == 2
        assert eo["mean"] == pytest.approx(np.mean([r["gaps"]["sex"]["equalized_odds_difference"]
                                                    for r in model["replicates"]]))
        if name != "supervised":
            compared = model["compared_with_supervised"]["sex"]["equalized_odds_difference"]
            assert {"model_a", "model_b", "difference", "ci", "p_value", "excludes_zero"} <= set(compared)
            assert compared["model_a"] == pytest.approx(eo["mean"])


def test_replicate_zero_of_two_is_the_one_replicate_model(audit_dir, replicated_dir):
    one = pd.read_parquet(audit_dir / "predictions.parquet")
    two = pd.read_parquet(replicated_dir / "predictions.parquet")
    assert two[list(one.columns)].equals(one)
    assert pd.read_parquet(replicated_dir / "embeddings.parquet").equals(pd.read_parquet(audit_dir / "embeddings.parquet"))
    single, double = (json.loads((d / "report.json").read_text()) for d in (audit_dir, replicated_dir))
    for a, b in zip(single["models"], double["models"]):
        assert {k: v for k, v in a.items() if k not in ("replicates", "aggregate", "compared_with_supervised")} == \
            {k: v for k, v in b.items() if k not in ("replicates", "aggregate", "compared_with_supervised")}


def test_each_replicate_draws_its_own_labelled_subsample():
    from core.data import DatasetSpec, open_source
    from core.data.split import redraw_labelled_train
    from core.data.study import Study

    study = Study.create(open_source("german"), DatasetSpec(target="credit", sensitive=("sex",), positive_label="good"),
                         label_fraction=0.3, seed=0)
    split, data = study.split, study.data
    again = redraw_labelled_train(split, data.y, data.groups, seed=1)
    other = redraw_labelled_train(split, data.y, data.groups, seed=2)
    assert len(again.labelled_train) == len(split.labelled_train) == len(other.labelled_train)
    assert set(again.labelled_train) <= set(split.train) and set(again.labelled_train) != set(other.labelled_train)
    assert np.array_equal(again.labelled_train, redraw_labelled_train(split, data.y, data.groups, seed=1).labelled_train)
    for same in ("train", "validation", "test"):
        assert np.array_equal(getattr(again, same), getattr(split, same))
    full = Study.create(open_source("german"), DatasetSpec(target="credit", sensitive=("sex",), positive_label="good"),
                        seed=0).split
    assert redraw_labelled_train(full, data.y, data.groups, seed=1) is full  # every train row labelled: unchanged


def test_replicates_must_be_one_or_more():
    from core.errors import InputError

    with pytest.raises(InputError, match="Replicates must be 1 or more"):
        AuditConfig(**{**TINY, "replicates": 0}).validate()
    assert AuditConfig(data="german", target="credit", sensitive=["sex"]).replicates == 5


def test_cli_audit_writes_all_or_nothing(tmp_path):
    env_args = ["--workspace", str(tmp_path / "ws")]
    bad = subprocess.run([sys.executable, "-m", "core.cli.main", "audit", "--data", "german", "--target", "credit",
                          "--sensitive", "sex", "--method", "nope", "--out", str(tmp_path / "out"), *env_args],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown pretraining method 'nope'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))
    missing = subprocess.run([sys.executable, "-m", "core.cli.main", "audit", "--data", "german", "--target", "credit",
                              "--sensitive", "gender", "--out", str(tmp_path / "out"), *env_args],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "'gender' is not in the table" in missing.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))
    from core.workspace.store import Workspace

    runs = Workspace(tmp_path / "ws").list_runs(kind="audit")
    assert [r["status"] for r in runs] == ["failed"] and "gender" in runs[0]["error"]


def test_a_terminated_audit_leaves_no_folder_and_is_marked_cancelled(tmp_path):
    import signal
    import time

    from core.workspace.store import Workspace

    stale = tmp_path / ".out.partial-999999999"  # left by an audit killed with SIGKILL (no such process)
    stale.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "core.cli.main", "audit", "--data", "german", "--target", "credit",
                                "--sensitive", "sex", "--epochs", "50", "--out", str(tmp_path / "out"),
                                "--workspace", str(tmp_path / "ws")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(f".out.partial-{process.pid}/checkpoints")) and time.monotonic() < deadline:
        time.sleep(0.2)  # wait until pretraining has written into its partial folder
    assert not stale.exists()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert process.returncode != 0
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))
    runs = Workspace(tmp_path / "ws").list_runs(kind="audit")
    assert [r["status"] for r in runs] == ["cancelled"]


def test_config_names_each_patience_and_reads_the_old_key():
    from core.learning.pretrain import PretrainConfig

    fields = AuditConfig.__dataclass_fields__
    assert fields["pretrain_patience"].default == PretrainConfig.__dataclass_fields__["patience"].default
    base = {"data": "german", "target": "credit", "sensitive": ["sex"]}
    assert AuditConfig.from_dict({**base, "patience": 2}).finetune_patience == 2  # a run stored before the rename
    assert AuditConfig.from_dict({**base, "patience": 2, "finetune_patience": 3}).finetune_patience == 3
    assert "patience" not in AuditConfig(**base).to_dict()


def test_pretraining_gets_its_own_patience(monkeypatch, tmp_path):
    from core.run import training

    seen = {}

    class Stop(Exception):
        pass

    def fake_pretrain(X_train, X_val, layout, config, **kwargs):
        seen["patience"] = config.patience
        raise Stop

    monkeypatch.setattr(training, "pretrain", fake_pretrain)
    with pytest.raises(Stop):
        run_audit(AuditConfig(**{**TINY, "pretrain_patience": 7, "finetune_patience": 1}), tmp_path)
    assert seen["patience"] == 7


def test_progress_shows_every_replicate_and_the_work_is_recorded(tmp_path):
    """With two replicates the live events carry each replicate's pretraining loss and each
    fine-tuned model's replicate; the overall fraction never goes back; timings.json records
    what each task computed (for bench/'s arithmetic floor); report.json the device and precision."""
    import torch

    from core.learning.precision import resolve_precision

    events = []
    run_audit(AuditConfig(**{**TINY, "replicates": 2, "finetune_epochs": 3, "strategies": ["linear", "full"]}),
              tmp_path, on_event=events.append)
    pretraining = [e for e in events if e["stage"] == "pretrain" and e.get("loss") is not None]
    assert {e["replicate"] for e in pretraining} == {0, 1}
    finetuned = [e for e in events if e["stage"] == "finetune" and e.get("loss") is not None]
    assert {(e["model"], e["replicate"]) for e in finetuned} >= {("scarf+full", 0), ("scarf+full", 1),
                                                                 ("supervised", 0), ("supervised", 1)}
    fractions = [e["fraction"] for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    timings = json.loads((tmp_path / "timings.json").read_text())
    work = timings["work"]
    assert [(w["task"], w["replicate"]) for w in work if w["task"] == "pretrain"] == [("pretrain", 0), ("pretrain", 1)]
    assert sorted((w["strategy"], w["replicate"]) for w in work if w["task"] == "finetune") == [
        ("full", 0), ("full", 1), ("linear", 0), ("linear", 1), ("supervised", 0), ("supervised", 1)]
    assert all(w["steps"] > 0 for w in work if w["task"] == "pretrain")
    assert all(1 <= len(w["epochs"]) <= 3 for w in work if w["strategy" if w["task"] == "finetune" else "task"]
               in ("full", "supervised"))
    assert timings["training_s"] >= timings["pretrain_s"] > 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["training"] == {"device": "cpu", "precision": resolve_precision("auto", torch.device("cpu"))}


def test_cancel_during_fine_tuning_stops_before_the_models_are_done(tmp_path):
    """Cancel reaches a fine-tuning between its steps (in this process, one worker): the run
    raises Cancelled before the second model of the first replicate is trained."""
    from core.errors import Cancelled

    events = []

    def should_stop() -> bool:
        return any(e["stage"] == "finetune" and e.get("step") for e in events)

    with pytest.raises(Cancelled):
        run_audit(AuditConfig(**{**TINY, "strategies": ["full", "linear"], "finetune_epochs": 50}), tmp_path,
                  on_event=events.append, should_stop=should_stop)
    assert not any(e.get("message", "").startswith("Fine-tuned") for e in events)
    assert not (tmp_path / SCRATCH).exists()


def test_batched_replicates_train_the_same_models_as_one_after_another(replicated_dir, tmp_path):
    """batch_replicates="on" (the CUDA default, forced here on the CPU): each recipe's two
    replicates train as one batched model (core.learning.batched) and give the scores of the
    replicates trained one after another, to rounding, for every model and replicate."""
    run_audit(AuditConfig(**{**TINY, "replicates": 2, "batch_replicates": "on"}), tmp_path)
    ours, theirs = pd.read_parquet(tmp_path / "predictions.parquet"), pd.read_parquet(replicated_dir / "predictions.parquet")
    scores = [c for c in theirs.columns if c.startswith("score__")]
    assert len(scores) >= 6 and sorted(scores) == sorted(c for c in ours.columns if c.startswith("score__"))
    for column in scores:
        np.testing.assert_allclose(ours[column], theirs[column], atol=2e-3, err_msg=column)
    work = json.loads((tmp_path / "timings.json").read_text())["work"]
    assert sorted(w["replicate"] for w in work if w["task"] == "pretrain") == [0, 1]
    # the batched path trained them: it writes no per-epoch checkpoints, the one after another does
    assert (replicated_dir / "checkpoints" / "r1").is_dir() and not (tmp_path / "checkpoints" / "r1").exists()


def test_a_shared_baseline_fit_counts_as_finished_for_every_replicate(tmp_path):
    """At label fraction 1 the replicates share one classical fit (same rows, deterministic); the
    progress still counts it once per replicate, so fine-tuning's share reaches 100% with the models.
    The classical fit runs right after the pretrainings, before any fine-tuning (one worker runs the
    tasks in priority order): gradient boosting, the longest single task, then overlaps the
    fine-tunings instead of running alone at the end (core.run.training.CLASSICAL_PRIORITY)."""
    events = []
    run_audit(AuditConfig(**{**TINY, "replicates": 2, "baselines": ["logistic-regression"]}), tmp_path,
              on_event=events.append)
    finished = [e["replicate"] for e in events if e.get("message") == "Fine-tuned logistic-regression"]
    assert sorted(finished) == [0, 1]
    order = [e["message"] for e in events if str(e.get("message")).startswith(("Pretrained replicate", "Fine-tuned"))]
    assert order[:4] == ["Pretrained replicate 1 of 2", "Pretrained replicate 2 of 2",
                         "Fine-tuned logistic-regression", "Fine-tuned logistic-regression"]
    assert len(order) == 4 + 2 * 3  # then linear, bn-stats and supervised of each replicate


def test_a_parquet_table_read_by_column_gives_the_report_of_the_table_read_whole(tmp_path, monkeypatch):
    """issue 22: a Parquet file is audited from its columns one at a time (core.data.columns); the
    report, predictions and embeddings are those of the same file read whole."""
    from core.data.datasets import load_bundled
    from core.data.study import Study
    from core.run import pipeline

    data = tmp_path / "german.parquet"
    load_bundled("german").to_parquet(data, index=False)
    config = AuditConfig(**{**TINY, "data": str(data)})
    made = []
    create_mapped = Study.create_mapped.__func__
    monkeypatch.setattr(Study, "create_mapped",
                        classmethod(lambda cls, *a, **k: made.append(1) or create_mapped(cls, *a, **k)))
    run_audit(config, tmp_path / "by_column")
    assert made == [1]
    monkeypatch.setattr(pipeline, "open_columns", lambda path: None)  # the whole-table path
    run_audit(config, tmp_path / "whole")
    assert made == [1]
    ours, theirs = (json.loads((tmp_path / run / "report.json").read_text()) for run in ("by_column", "whole"))
    assert ours == theirs
    for name in ("predictions.parquet", "embeddings.parquet"):
        assert pd.read_parquet(tmp_path / "by_column" / name).equals(pd.read_parquet(tmp_path / "whole" / name))
