"""Benchmark: a study grid on German credit on local Ray, against the same cells one after another.

The grid: 9 SSL methods (scarf, vime, dae, simclr, byol, simsiam, vicreg, barlow, swav) x the
linear strategy + the supervised baseline, 3 replicates, 2 pretraining and 2 fine-tuning epochs,
one label fraction (1.0), no classical baselines, no UMAP (the grid's engine is measured, not the
maps), the other knobs at AuditConfig's defaults (1,000 resamples).

Ours: `core.run.grid.run_grid` on a local Ray (ray.init with this machine's cores, one cell per
core), in a child process. Peer: the same 9 cells (core.run.pipeline.run_audit, workers=1, the
same seeds) one after another in one child process. Both sides' wall time is the child's, from
start to exit (imports and Ray's start-up included). Ray's start-up: ray.init + the first trivial
task, timed inside the Ray child. Peak memory: the largest sum of resident set sizes over the
child and every process below it (Ray's raylet, GCS and workers), sampled from /proc every 0.25 s
(psutil is not installed). "reports_identical": every cell's report.json equal on both sides (both with
one BLAS thread, as Ray gives a 1-CPU task: with more, numpy's CKA products differ in the 16th digit).
ratio = peer wall / ours (goal > 1: the grid is faster than one cell after another).

    python -m bench.bench_grid [--quick]

Writes "grid_on_ray" into bench/results.json (merged with what is there).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: python bench/bench_grid.py
    sys.path.insert(0, str(ROOT))

from bench.common import GB, PYTHON, last_json_line, machine_line, merge_result  # noqa: E402
from core.run.config import AuditConfig  # noqa: E402
from core.run.grid_config import ALL_METHODS, GridConfig  # noqa: E402

NINE = list(ALL_METHODS[:9])
PAGE = os.sysconf("SC_PAGE_SIZE")


def the_grid(quick: bool) -> GridConfig:
    base = AuditConfig(data="german", target="credit", sensitive=["sex", "age"], positive="good",
                       strategies=["linear"], baselines=[], umap=False, replicates=1 if quick else 3,
                       epochs=1 if quick else 2, finetune_epochs=1 if quick else 2, n_boot=100 if quick else 1000)
    return GridConfig(base=base, methods=NINE[:2] if quick else NINE, label_fractions=[1.0])


def _tree_rss(root: int) -> int:
    """Bytes resident in `root` and every process below it (from /proc: stat for the parents, statm for RSS)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
                total += int(statm.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(pid, []))
    return total


def measure(side: str, out: Path, quick: bool) -> dict:
    """Run one side in a child process: its wall seconds, the peak RSS of its process tree, its JSON line."""
    command = [PYTHON, "-m", "bench.bench_grid", "--side", side, "--out", str(out)] + (["--quick"] if quick else [])
    # One BLAS/OpenMP thread on both sides: Ray gives each 1-CPU cell OMP_NUM_THREADS=1, and numpy's
    # matrix products (the CKA of the representation audit) round differently in the 16th digit with more.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    peak = 0
    while child.poll() is None:
        peak = max(peak, _tree_rss(child.pid))
        time.sleep(0.25)
    wall = time.perf_counter() - started
    stdout = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise RuntimeError(f"the {side} side failed (exit {child.returncode})")
    return {**last_json_line(stdout), "wall_s": wall, "peak_rss_bytes": peak}


def side_ray(out: Path, quick: bool) -> dict:
    import ray

    from core.run.grid import connect, run_grid

    started = time.perf_counter()
    connect(None)
    ray.get(ray.remote(lambda: 1).remote())
    startup = time.perf_counter() - started
    started = time.perf_counter()
    result = run_grid(the_grid(quick), out)
    seconds = time.perf_counter() - started
    ray.shutdown()
    return {"startup_s": startup, "grid_s": seconds, "succeeded": result["counts"]["succeeded"]}


def side_serial(out: Path, quick: bool) -> dict:
    from core.run.grid_manifest import cell_dir
    from core.run.pipeline import run_audit

    started = time.perf_counter()
    for cell in the_grid(quick).cells():
        run_audit(cell.config, cell_dir(out, cell))
    return {"grid_s": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 methods, 1 replicate, 1 epoch each (smoke check)")
    parser.add_argument("--side", choices=("ray", "serial"), help=argparse.SUPPRESS)  # a child's side
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        run = side_ray if args.side == "ray" else side_serial
        print(json.dumps(run(Path(args.out), args.quick)))
        return 0

    grid = the_grid(args.quick)
    with tempfile.TemporaryDirectory(prefix="bench-grid-") as tmp:
        ours = measure("ray", Path(tmp) / "ray", args.quick)
        peer = measure("serial", Path(tmp) / "serial", args.quick)
        identical = all(
            json.loads((Path(tmp) / "ray" / "cells" / cell.name / "report.json").read_text())
            == json.loads((Path(tmp) / "serial" / "cells" / cell.name / "report.json").read_text())
            for cell in grid.cells())
        cell_s = [json.loads((Path(tmp) / "ray" / "cells" / c.name / "timings.json").read_text())["total_s"]
                  for c in grid.cells()]
    ratio = peer["wall_s"] / ours["wall_s"]
    cells, base = len(grid.cells()), grid.base
    trainings = cells * base.replicates * (1 + len(base.strategies) + 1)
    line = machine_line()
    print(f"{cells} cells ({trainings} trainings) on German credit ({line})")
    print(f"  ours (local Ray): {ours['wall_s']:.1f} s wall, Ray start-up {ours['startup_s']:.1f} s, "
          f"peak {ours['peak_rss_bytes'] / GB:.2f} GB (driver + Ray's processes)")
    print(f"  peer (one after another): {peer['wall_s']:.1f} s wall, peak {peer['peak_rss_bytes'] / GB:.2f} GB")
    print(f"  ratio {ratio:.2f}; reports identical: {identical}; a cell on Ray {min(cell_s):.1f}-{max(cell_s):.1f} s")
    entry = {"value": round(ours["wall_s"], 1), "unit": "s",
             "peer": f"the same {cells} cells one after another in one process", "peer_value": round(peer["wall_s"], 1),
             "ratio": round(ratio, 3), "goal": "ratio > 1", "met": bool(ratio > 1 and identical),
             "ray_startup_s": round(ours["startup_s"], 2), "ray_grid_s": round(ours["grid_s"], 1),
             "peer_grid_s": round(peer["grid_s"], 1), "peak_rss_gb": round(ours["peak_rss_bytes"] / GB, 2),
             "peer_peak_rss_gb": round(peer["peak_rss_bytes"] / GB, 2), "cells": cells, "trainings": trainings,
             "cell_s_min": round(min(cell_s), 1), "cell_s_max": round(max(cell_s), 1),
             "reports_identical": identical, "cores": os.cpu_count(), "machine": line}
    path = merge_result("grid_on_ray", entry, quick=args.quick)
    print(f"wrote grid_on_ray to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
