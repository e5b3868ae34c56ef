"""Numeric targets from the command line (issue 16, item 5): a threshold is accepted, a
many-valued numeric target without one exits 2 with the median as the suggested threshold."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

from core.cli import main as cli


def _wages(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"sex": rng.choice(["Female", "Male"], size=300),
                          "wage": np.round(rng.lognormal(2.3, 0.5, size=300), 2)})
    path = tmp_path / "wages.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_inspect_reads_a_threshold_as_the_positive_label(tmp_path, capsys):
    path, frame = _wages(tmp_path)
    assert cli.main(["inspect", "--data", str(path), "--target", "wage", "--positive", ">=10",
                     "--sensitive", "sex", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["positive_label"] == "wage >= 10"
    n_positive = sum(group["base_rate"] * group["n_labelled"] for group in report["groups"]["sex"])
    assert round(n_positive) == int((frame["wage"] >= 10).sum())


def test_audit_refuses_a_many_valued_numeric_target_without_threshold(tmp_path):
    path, frame = _wages(tmp_path)
    result = subprocess.run([sys.executable, "-m", "core.cli.main", "audit", "--data", str(path), "--target", "wage",
                             "--sensitive", "sex", "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]  # beside the progress bar
    assert len(errors) == 1 and "numeric with" in errors[0] and "(its median)" in errors[0]
    assert "--positive '>= " in errors[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
