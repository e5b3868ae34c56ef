"""The grid without Ray: its cells, validation, expected cost, verdicts over the whole grid, the CLI's bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.audit.multiplicity import PRACTICAL_FLOOR, holm
from core.cli.main import main
from core.errors import InputError
from core.learning.ssl import method_names
from core.run.config import AuditConfig
from core.run.grid_config import ALL_METHODS, GridConfig, config_hash, expected_cost, parse_fractions, parse_methods
from core.run.grid_manifest import GridManifest, finished_before
from core.run.grid_verdicts import FAMILY, grid_verdicts

BASE = AuditConfig(data="german", target="credit", sensitive=["sex", "age"], strategies=["linear", "full"],
                   replicates=3, epochs=2, finetune_epochs=4, baselines=[], seed=7)


def test_the_light_method_list_is_the_registry():
    assert list(ALL_METHODS) == method_names()
    assert parse_methods("all") == list(ALL_METHODS) and parse_methods(" SCARF, vime ") == ["scarf", "vime"]


def test_cells_are_methods_x_fractions_on_one_seed_each_in_one_process():
    grid = GridConfig(base=BASE, methods=["scarf", "vime"], label_fractions=[0.1, 1.0])
    cells = grid.cells()
    assert [c.name for c in cells] == ["scarf-lf0.1", "scarf-lf1", "vime-lf0.1", "vime-lf1"]
    assert {(c.config.method, c.config.label_fraction) for c in cells} == {(c.method, c.label_fraction) for c in cells}
    assert {c.config.seed for c in cells} == {7} and {c.config.workers for c in cells} == {1}
    assert all(c.config.strategies == ["linear", "full"] for c in cells)
    assert len({c.config_hash for c in cells}) == 4
    assert GridConfig.from_dict(json.loads(json.dumps(grid.to_dict()))).cells()[3].config_hash == cells[3].config_hash


@pytest.mark.parametrize("methods, fractions, words", [
    (["scarf", "nope"], [1.0], "Unknown SSL method 'nope'"), (["scarf"], [0.0], "outside (0, 1]"),
    (["scarf"], [1.5], "outside (0, 1]"), ([], [1.0], "No SSL method"), (["scarf"], [], "No label fraction"),
    (["scarf", "scarf"], [1.0], "given twice")])
def test_bad_grids_are_input_errors(methods, fractions, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        GridConfig(base=BASE, methods=methods, label_fractions=fractions).validate()


def test_a_fraction_that_is_not_a_number_is_bad_input():
    with pytest.raises(InputError, match="not a number"):
        parse_fractions("0.1,half")


def test_the_expected_cost_counts_cells_and_trainings_and_follows_its_per_cell_model():
    grid = GridConfig(base=BASE, methods=list(ALL_METHODS[:3]), label_fractions=[0.1, 0.5, 1.0])
    cost = expected_cost(grid, rows=2000, parallel=4)
    assert cost.cells == 9 and cost.trainings == 9 * 3 * (1 + 2 + 1)
    from core.run import grid_config as g
    per_cell = g.CELL_FIXED_S + 3 * 2 * (2 * g.PRETRAIN_S_PER_EPOCH_PER_1K_ROWS + 3 * 4 * g.FINETUNE_S_PER_EPOCH_PER_1K_ROWS)
    assert cost.cell_seconds == pytest.approx(per_cell) and cost.seconds == pytest.approx(3 * per_cell)  # 9 cells in 3 waves


def _report(p_values: dict[str, tuple[float, float]], model: str) -> dict:
    """A cell's report with one SSL model: {attribute: (p, difference)} for both headline gaps."""
    compared = {a: {gap: {"difference": d, "ci": [d - 0.01, d + 0.01], "p_value": p, "p_adjusted": p}
                    for gap in ("equalized_odds_difference", "demographic_parity_difference")}
                for a, (p, d) in p_values.items()}
    return {"study": {"sensitive": list(p_values)}, "bootstrap": {"confidence": 0.95},
            "models": [{"name": model, "compared_with_supervised": compared}, {"name": "supervised"}]}


def test_grid_verdicts_are_holm_adjusted_over_every_cell_together_and_keep_the_practical_floor():
    cells = [({"method": "scarf", "strategy": "linear", "label_fraction": 1.0, "cell": "scarf-lf1"},
              _report({"sex": (0.001, -0.05), "age": (0.02, -0.04)}, "scarf+linear")),
             ({"method": "vime", "strategy": "linear", "label_fraction": 1.0, "cell": "vime-lf1"},
              _report({"sex": (0.004, 0.003), "age": (0.5, 0.02)}, "vime+linear"))]
    verdicts = grid_verdicts(cells)
    assert verdicts["family"] == FAMILY and verdicts["size"] == 8 and verdicts["method"] == "holm"
    rows = verdicts["rows"]
    assert [r["p_adjusted"] for r in rows] == holm([r["p_value"] for r in rows])
    by = {(r["method"], r["attribute"]): r for r in rows if r["gap"] == "equalized_odds_difference"}
    assert by["scarf", "sex"]["verdict"] == "narrowed"  # 0.001 x 8 = 0.008 < 0.05
    assert by["scarf", "age"]["verdict"] == "no clear difference"  # 0.02 alone would be clear; not in a family of 8
    assert by["vime", "sex"]["clear"] and by["vime", "sex"]["verdict"] == "too small to matter"  # 0.003 < floor
    assert PRACTICAL_FLOOR == verdicts["practical_floor"]


def test_a_finished_cell_is_known_by_its_reports_config_hash(tmp_path):
    grid = GridConfig(base=BASE, methods=["scarf"], label_fractions=[1.0])
    cell = grid.cells()[0]
    assert not finished_before(tmp_path, cell)
    folder = tmp_path / "cells" / cell.name
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"config": {**cell.config.to_dict(), "epochs": 3}}))
    assert not finished_before(tmp_path, cell)  # made from another config: run again
    (folder / "report.json").write_text(json.dumps({"config": cell.config.to_dict()}))
    assert finished_before(tmp_path, cell) and config_hash(cell.config.to_dict()) == cell.config_hash
    manifest = GridManifest(tmp_path, grid)
    manifest.write()
    assert json.loads((tmp_path / "grid.json").read_text())["cells"][0]["status"] == "pending"


@pytest.mark.parametrize("flags, words", [
    (["--methods", "scarf,nope"], "Unknown SSL method 'nope'"),
    (["--methods", "scarf", "--label-fractions", "0.5,1.5"], "Label fraction 1.5 is outside (0, 1]"),
    (["--methods", "scarf", "--address", "127.0.0.1:9"], "Cannot reach the Ray cluster at 127.0.0.1:9")])
def test_the_cli_says_bad_input_in_one_line_with_exit_2(flags, words, tmp_path, capsys):
    code = main(["grid", "--data", "german", "--target", "credit", "--sensitive", "sex", *flags,
                 "--out", str(tmp_path / "grid")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "grid").exists()  # nothing half-written


def test_grid_help_imports_no_ray_nor_torch():
    code = ("import sys; from core.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in ('ray', 'torch', 'flwr', 'opacus') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
