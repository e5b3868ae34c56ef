"""The grid on a real two-node Ray cluster: cells equal the serial run, resume, retry, cancel.

One module, one cluster (ray.cluster_utils.Cluster: a head and a second node, one CPU each, both
on this machine): Ray's start-up is the cost, so every Ray test shares it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

import ray
from ray.cluster_utils import Cluster
from threadpoolctl import threadpool_limits

from core.errors import InputError
from core.run.config import AuditConfig
from core.run.grid import run_grid, worker_runtime_env
from core.run.grid_config import GridConfig
from core.run.pipeline import run_audit

TINY = dict(data="german", target="credit", sensitive=["sex"], positive="good", epochs=1, finetune_epochs=1,
            n_boot=50, strategies=["linear"], umap=False, replicates=1, baselines=[],
            encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16})
GRID = GridConfig(base=AuditConfig(**TINY), methods=["scarf", "vime"], label_fractions=[0.5, 1.0])


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, runtime_env=worker_runtime_env(), log_to_driver=False)
    # the scripted runners below travel to the workers by value (this test module is not importable there)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def grid_dir(cluster, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    events: list[dict] = []
    result = run_grid(GRID, out, on_event=events.append)
    return out, result, events


def _report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


def _first_difference(a, b, path=""):
    """Where two JSON values first differ (the assertion's message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next((f for f in (_first_difference(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))) if f),
                    None)
    return None if a == b else f"{path}: {a!r} != {b!r}"


def test_every_cell_on_two_nodes_equals_the_serial_run(grid_dir, tmp_path):
    out, result, events = grid_dir
    assert result["counts"]["succeeded"] == 4, [(r["cell"], r["status"], r["error"]) for r in result["cells"]]
    assert len(result["cells"]) == 4  # one strategy: one row per cell
    assert {(r["method"], r["strategy"], r["label_fraction"]) for r in result["cells"]} == {
        (m, "linear", f) for m in ("scarf", "vime") for f in (0.5, 1.0)}
    assert all(r["report"] == f"cells/{r['cell']}/report.json" for r in result["cells"])
    on_disk = json.loads((out / "grid.json").read_text())
    assert on_disk["counts"] == result["counts"] and on_disk["verdicts"]["size"] == 8  # 4 cells x 1 attribute x 2 gaps
    for cell in GRID.cells():
        serial = tmp_path / cell.name
        with threadpool_limits(1):  # one BLAS thread, as Ray gives a 1-CPU task (docs/grid.md: the 16th digit)
            run_audit(cell.config, serial)  # the same cell, one after another in this process
        on_ray, one_after_another = _report(out / "cells" / cell.name), _report(serial)
        assert on_ray == one_after_another, (cell.name, _first_difference(on_ray, one_after_another))
    # progress reached the driver from the cells, each event naming its cell
    assert {e.get("cell") for e in events if e.get("stage") == "pretrain"} >= {c.name for c in GRID.cells()}
    assert events[-1]["stage"] == "done" and events[-1]["fraction"] == 1.0


def test_a_second_run_into_the_same_folder_runs_no_cell_and_a_killed_grid_redoes_only_its_unfinished_cell(
        grid_dir):
    out, first, _ = grid_dir
    before = {c.name: (out / "cells" / c.name / "report.json").stat().st_mtime_ns for c in GRID.cells()}
    again = run_grid(GRID, out)
    assert all(r["resumed"] and r["attempts"] == 0 and r["status"] == "succeeded" for r in again["cells"])
    assert again["verdicts"] == first["verdicts"]
    # a grid killed before its last cell finished: that cell's folder is not there
    lost = "vime-lf1"
    import shutil
    shutil.rmtree(out / "cells" / lost)
    resumed = run_grid(GRID, out)
    attempts = {r["cell"]: r["attempts"] for r in resumed["cells"]}
    assert attempts == {"scarf-lf0.5": 0, "scarf-lf1": 0, "vime-lf0.5": 0, lost: 1}
    after = {c.name: (out / "cells" / c.name / "report.json").stat().st_mtime_ns for c in GRID.cells()}
    assert all(after[name] == before[name] for name in before if name != lost)
    assert resumed["verdicts"] == first["verdicts"]  # the redone cell gave the same numbers


class ScriptedRunner:
    """A cell runner that fails as told: `flaky` cells raise on their first attempt only, `broken`
    ones always, `bad` ones raise InputError; `slow` ones sleep; the others write a small report.
    Attempts are counted in files (each attempt may run in another process, on another node)."""

    def __init__(self, marks: Path, flaky=(), broken=(), bad=(), slow=()) -> None:
        self.marks, self.flaky, self.broken, self.bad, self.slow = marks, set(flaky), set(broken), set(bad), set(slow)

    def __call__(self, config: AuditConfig, out_dir: Path, on_event) -> None:
        name = f"{config.method}-lf{config.label_fraction:g}"
        attempt = len(list(self.marks.glob(f"{name}.*"))) + 1
        (self.marks / f"{name}.{attempt}").touch()
        out_dir.mkdir(parents=True)
        if name in self.bad:
            raise InputError(f"bad input in {name}", "fix it")
        if name in self.broken or (name in self.flaky and attempt == 1):
            raise RuntimeError(f"{name} broke on attempt {attempt}")
        if name in self.slow:
            time.sleep(60)
        (out_dir / "report.json").write_text(json.dumps({"config": config.to_dict(), "models": [],
                                                         "study": {"sensitive": ["sex"]}}))


def test_a_failing_cell_is_retried_once_bad_input_never_and_the_others_finish(cluster, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    runner = ScriptedRunner(marks, flaky={"scarf-lf0.5"}, broken={"scarf-lf1"}, bad={"vime-lf0.5"})
    result = run_grid(GRID, tmp_path / "out", runner=runner)
    rows = {r["cell"]: r for r in result["cells"]}
    assert (rows["scarf-lf0.5"]["status"], rows["scarf-lf0.5"]["attempts"]) == ("succeeded", 2)
    assert (rows["scarf-lf1"]["status"], rows["scarf-lf1"]["attempts"]) == ("failed", 2)
    assert rows["scarf-lf1"]["error"] == "RuntimeError: scarf-lf1 broke on attempt 2"
    assert (rows["vime-lf0.5"]["status"], rows["vime-lf0.5"]["attempts"]) == ("failed", 1)
    assert "bad input in vime-lf0.5" in rows["vime-lf0.5"]["error"]
    assert (rows["vime-lf1"]["status"], rows["vime-lf1"]["attempts"]) == ("succeeded", 1)
    assert sorted(p.name for p in marks.iterdir()) == ["scarf-lf0.5.1", "scarf-lf0.5.2", "scarf-lf1.1",
                                                       "scarf-lf1.2", "vime-lf0.5.1", "vime-lf1.1"]
    cells = tmp_path / "out" / "cells"
    assert sorted(p.name for p in cells.iterdir()) == ["scarf-lf0.5", "vime-lf1"]  # no partial folder left


def test_cancel_stops_the_remaining_cells_and_keeps_the_finished_one(cluster, tmp_path):
    out = tmp_path / "out"
    runner = ScriptedRunner(tmp_path, slow={"scarf-lf1", "vime-lf0.5", "vime-lf1"})
    # the sleeping cells (60 s) would finish "succeeded" if they were waited for instead of cancelled
    result = run_grid(GRID, out, runner=runner, should_stop=lambda: (out / "cells" / "scarf-lf0.5").exists())
    status = {r["cell"]: r["status"] for r in result["cells"]}
    assert status == {"scarf-lf0.5": "succeeded", "scarf-lf1": "cancelled", "vime-lf0.5": "cancelled",
                      "vime-lf1": "cancelled"}
    assert json.loads((out / "grid.json").read_text())["counts"]["cancelled"] == 3
    assert not any((out / "cells" / name).exists() for name in status if status[name] == "cancelled")


def test_the_workspace_job_runs_the_grid_into_its_run_folder(grid_dir, tmp_path):
    import shutil
    from types import SimpleNamespace

    from core.run.grid import grid_job

    out, first, _ = grid_dir
    run_dir = tmp_path / "run"
    shutil.copytree(out, run_dir)  # a grid killed after its four cells: the job finishes it without training
    events: list[dict] = []
    context = SimpleNamespace(config={"grid": GRID.to_dict(), "address": None}, run_dir=run_dir,
                              report=events.append, should_stop=lambda: False)
    clear = sum(bool(r["clear"]) and not r["below_floor"] for r in first["verdicts"]["rows"])
    assert grid_job(context) == {**first["counts"], "clear_verdicts": clear}
    assert json.loads((run_dir / "grid.json").read_text())["verdicts"] == first["verdicts"]
    assert events[-1]["stage"] == "done"
