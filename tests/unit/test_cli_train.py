"""`equiscope pretrain` and `equiscope finetune`: tiny real runs, their files, and exit code 2
with one line for bad arguments."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from core.cli import main as cli
from core.learning.checkpoint import load_encoder
from core.cli._progress import ProgressBar, format_duration
from core.learning.finetune import TrainedClassifier
from core.data.study import Study

TINY = ["--hidden-dim", "16", "--depth", "2", "--embed-dim", "8"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "scarf"
    code = cli.main(["pretrain", "--data", "german", "--target", "credit", "--method", "scarf", "--epochs", "2",
                     "--batch-size", "128", *TINY, "--out", str(out)])
    assert code == 0
    return out


def test_pretrain_writes_study_encoder_and_history(pretrained):
    study = Study.load(pretrained)
    assert study.spec.sensitive == ("sex", "age")  # the dataset card's attributes by default
    assert study.spec.positive_label == "good"
    encoder, config = load_encoder(pretrained / "encoder")
    assert (config.hidden_dim, config.depth, config.embed_dim) == (16, 2, 8)
    assert config.input_dim == study.X.shape[1]
    history = json.loads((pretrained / "history.json").read_text())
    assert len(history["history"]) == 2 and history["rows_per_second"] > 0
    assert history["config"]["method"] == "scarf"


def test_finetune_trains_each_strategy_and_the_baseline(pretrained, tmp_path, capsys):
    out = tmp_path / "ft"
    code = cli.main(["finetune", "--pretrained", str(pretrained), "--strategies", "linear,bn-stats,full",
                     "--label-fraction", "0.5", "--epochs", "2", "--out", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    assert "scarf+bn-stats" in table and "supervised" in table and "balanced acc" in table
    metrics = json.loads((out / "metrics.json").read_text())
    names = [m["name"] for m in metrics["models"]]
    assert names == ["scarf+linear", "scarf+bn-stats", "scarf+full", "supervised"]
    assert metrics["label_fraction"] == 0.5 and metrics["n_test"] == 200
    study = Study.load(out)
    assert len(study.split.labelled_train) == metrics["n_labelled_train"] < len(study.split.train)
    X_test, y_test = study.X[study.split.test], study.labels(study.split.test)
    for entry in metrics["models"]:
        model = TrainedClassifier.load(out / "models" / entry["name"])
        pred = model.predict(X_test)
        assert entry["test"]["accuracy"] == pytest.approx((pred == y_test).mean())
        assert entry["n_trainable_params"] == model.n_trainable_params
        assert set(entry["test"]) == {"n", "accuracy", "balanced_accuracy", "roc_auc"}
    by_name = {m["name"]: m for m in metrics["models"]}
    assert by_name["scarf+linear"]["n_trainable_params"] == 9  # embed_dim 8 + bias
    assert by_name["supervised"]["pretraining"] is None


@pytest.mark.parametrize("args, fragment", [
    (["pretrain", "--data", "german", "--target", "credit", "--method", "simclrr", "--out", "X"],
     "unknown pretraining method 'simclrr'"),
    (["pretrain", "--data", "german", "--target", "credit", "--method", "scarf", "--epochs", "0", "--out", "X"],
     "--epochs must be 1 or more"),
    (["pretrain", "--data", "german", "--target", "kredit", "--method", "scarf", "--epochs", "1", "--out", "X"],
     "kredit"),
    (["finetune", "--pretrained", "PRE", "--strategies", "linear,bn", "--out", "X"], "Unknown fine-tuning strategy 'bn'"),
    (["finetune", "--pretrained", "PRE", "--epochs", "0", "--out", "X"], "Epochs must be a whole number > 0"),
    (["finetune", "--pretrained", "PRE", "--label-fraction", "0", "--out", "X"], "Label fraction 0.0 is outside (0, 1]"),
    (["finetune", "--pretrained", "PRE", "--label-fraction", "1.5", "--out", "X"], "outside (0, 1]"),
    (["finetune", "--pretrained", "MISSING", "--out", "X"], "does not exist"),
])
def test_bad_arguments_exit_2_with_one_line(args, fragment, pretrained, tmp_path, capsys):
    args = [str(pretrained) if a == "PRE" else str(tmp_path / "nope") if a == "MISSING" else
            str(tmp_path / "out") if a == "X" else a for a in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and err[0].startswith("error: ")
    assert not (tmp_path / "out").exists()


def test_a_folder_without_a_study_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["finetune", "--pretrained", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "No study.json in" in capsys.readouterr().err


def test_exit_code_and_single_line_from_a_real_process(tmp_path):
    result = subprocess.run([sys.executable, "-m", "core.cli.main", "finetune", "--pretrained", str(tmp_path / "none"),
                             "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_progress_bar_lines():
    stream = io.StringIO()
    bar = ProgressBar(stream=stream)
    for step in (1, 2):
        bar.update({"stage": "pretrain", "epoch": 1, "epochs": 2, "step": step, "total_steps": 4,
                    "loss": 1.0, "fraction": step / 4})
    bar.update({"stage": "pretrain", "epoch": 2, "epochs": 2, "step": 4, "total_steps": 4, "loss": 0.5,
                "val_loss": 0.6, "rows_per_second": 12345.6, "fraction": 1.0})
    bar.update({"stage": "warning", "message": "collapsed"})
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # not a terminal: one line per epoch, warnings on their own
    assert lines[1].startswith("pretrain  epoch 2/2  step 4/4  [" + "#" * 24 + "] 100%")
    assert "val 0.6000" in lines[1] and "12,346 rows/s" in lines[1] and lines[2] == "warning: collapsed"
    text = ProgressBar(stream=io.StringIO()).render({"stage": "finetune", "fraction": 0.25}, elapsed=10.0)
    assert "[######------------------]  25%" in text and "ETA 0:30" in text
    assert format_duration(3723) == "1:02:03" and format_duration(7.4) == "0:07"


def test_finetune_is_reproducible(pretrained, tmp_path):
    for name in ("a", "b"):
        assert cli.main(["finetune", "--pretrained", str(pretrained), "--strategies", "gradual",
                         "--epochs", "3", "--seed", "3", "--out", str(tmp_path / name)]) == 0
    study = Study.load(tmp_path / "a")
    X = study.X[study.split.test]
    for name in ("scarf+gradual", "supervised"):
        first = TrainedClassifier.load(tmp_path / "a" / "models" / name).predict_proba(X)
        assert np.array_equal(first, TrainedClassifier.load(tmp_path / "b" / "models" / name).predict_proba(X))


def test_progress_bar_redraws_one_line_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = ProgressBar(stream=stream, min_interval=0.0)
    bar.update({"stage": "finetune", "model": "scarf+full", "epoch": 1, "epochs": 2, "fraction": 0.5})
    bar.update({"stage": "finetune", "model": "scarf+full", "epoch": 2, "epochs": 2, "fraction": 1.0})
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.count("\n") == 1 and text.endswith("100%\n")
