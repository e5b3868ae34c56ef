"""The command line: output, and the exit-code contract (0 ok, 2 bad input in one line, 1 bug + log)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.cli import main as cli


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "core.cli.main", *args], capture_output=True, text=True, env=env)


def test_datasets_lists_the_bundled_ones(capsys):
    assert cli.main(["datasets", "--json"]) == 0
    names = [d["name"] for d in json.loads(capsys.readouterr().out)]
    assert names == ["adult", "compas", "german"]


def test_inspect_text_and_json(capsys):
    assert cli.main(["inspect", "--data", "german"]) == 0
    text = capsys.readouterr().out
    assert "Groups (target 'credit', positive 'good')" in text and "female" in text
    assert cli.main(["inspect", "--data", "compas", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 6172 and report["positive_label"] == "1"
    sizes = {g["group"]: g["n"] for g in report["groups"]["sex"]}
    assert sizes == {"Male": 4997, "Female": 1175}


def test_inspect_a_file_flags_pii_and_suggests_groups(tmp_path, capsys):
    path = tmp_path / "people.csv"
    rows = ["name,email,gender,score,approved"]
    rows += [f"Person {i},p{i}@x.org,{'F' if i % 3 else 'M'},{i % 17},{'yes' if i % 4 else 'no'}" for i in range(200)]
    path.write_text("\n".join(rows))
    assert cli.main(["inspect", "--data", str(path), "--target", "approved", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {p["column"] for p in report["pii"]} == {"name", "email"}
    assert report["sensitive"] == ["gender"] and report["positive_label"] == "yes"


@pytest.mark.parametrize("args, fragment", [
    (["inspect", "--data", "nope"], "neither a bundled dataset nor a file"),
    (["inspect", "--data", "adult", "--target", "incme"], "Did you mean 'income'?"),
    (["inspect"], "required: --data"),
    (["frobnicate"], "invalid choice"),
    (["serve", "--port", "99999"], "not a valid port"),
])
def test_bad_input_exits_2_with_one_line(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr


def test_an_internal_error_exits_1_with_a_log_pointer(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EQUISCOPE_LOG_DIR", str(tmp_path))
    monkeypatch.setattr("core.cli.datasets.list_datasets", lambda: 1 / 0)
    assert cli.main(["datasets"]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and str(tmp_path) in err and "Traceback" not in err
    log = next(tmp_path.glob("crash-*.log")).read_text()
    assert "ZeroDivisionError" in log
    assert cli.main(["datasets", "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_audit_patience_flags_reach_the_right_training():
    parser = cli.build_parser()
    args = parser.parse_args(["audit", "--data", "german", "--target", "credit", "--sensitive", "sex", "--out", "x",
                              "--patience", "2", "--pretrain-patience", "9"])
    assert (args.finetune_patience, args.pretrain_patience) == (2, 9)
    default = parser.parse_args(["audit", "--data", "german", "--target", "credit", "--sensitive", "sex",
                                 "--out", "x"])
    assert (default.finetune_patience, default.pretrain_patience) == (5, 5)
    assert parser.parse_args(["audit", "--data", "g", "--target", "t", "--sensitive", "s", "--out", "x",
                              "--finetune-patience", "4"]).finetune_patience == 4
