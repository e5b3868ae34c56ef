"""Benchmark: SCARF pretraining streamed from a 1,000,000 x 50 Parquet file, peak memory against
a 4 GB budget.

Ours: `core.learning.pretrain.pretrain` (method "scarf", default encoder, batch 256, 1 epoch) on a
`core.learning.streaming.ParquetChunks` source: row groups are read one at a time (in a shuffled
order) and batched through a shuffle buffer, so only one row group plus a batch of leftover
rows is in memory, never the table. Every column is its own numeric feature
(`FeatureLayout.all_numeric`).

Peer: a budget of 4 GB peak resident memory. ratio = 4 GB / peak (GB = 10^9 bytes). Also
reported: rows/s of the epoch.

Data: a synthetic float32 table, x = z W + 0.5 e (z: 8 standard normal factors, W fixed,
e: standard normal noise), written to a temporary Parquet file in row groups of 65,536 rows,
one row group at a time, so the writer never holds the table either. Training runs in a
child process: its peak RSS (os.wait4) is that of the training alone, not of the writer.

    python -m bench.bench_scale [--rows 1000000] [--features 50] [--quick]

Writes "scale_1m" into bench/results.json (merged with what is there).

`--audit` runs the other entry, "scale_audit" (issue 22): the default audit
(`equiscope audit --target income --sensitive sex,race --replicates 1`) of the bundled Adult
repeated 1, 2 and 4 times (45,222, 90,444 and 180,888 rows; pandas concat written as Parquet),
each in a child process (peak RSS via `run_measured`: the largest single process, as os.wait4
reports it), with every stage's seconds read from the run's timings.json. Its value is
`per_row_growth` = (wall per row at 180,888) / (wall per row at 45,222), goal <= 1.1: a cost
linear in the rows gives 1. Peer: the goal itself. The same ratio of today's main cannot be
measured in the same run (it would need the old code beside the new), so, like the other
budget entries, the peer is the budget; the issue's figures before the change (1.28) are in
docs/performance.md.

    python -m bench.bench_scale --audit [--quick]     (--quick: Adult x1 and x2, 1 epoch)

`--million` adds the entry's `million_rows` field (bench/million_rows.py: a seeded 1,000,000 x 50
table with a planted gap, audited with the defaults and one replicate; <= 30 min, <= 4 GB of the
whole process tree, planted gap found); `--million-only` measures that field alone and keeps the
entry's other fields from the last run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: python bench/bench_scale.py
    sys.path.insert(0, str(ROOT))

from bench.common import GB, PYTHON, last_json_line, machine_line, merge_result, read_results, run_measured  # noqa: E402
from bench.million_rows import MILLION, million_rows  # noqa: E402

ROWS = 1_000_000
FEATURES = 50
ROW_GROUP = 65_536
FACTORS = 8
BUDGET_GB = 4.0


def write_table(path: Path, rows: int, features: int, seed: int) -> None:
    """The synthetic table (see the module docstring), one row group per write."""
    import pyarrow as pa  # the parent's only heavy import; `--child` does not need it
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(FACTORS, features)).astype(np.float32)
    schema = pa.schema([(f"x{j}", pa.float32()) for j in range(features)])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            m = min(ROW_GROUP, rows - start)
            z = rng.normal(size=(m, FACTORS)).astype(np.float32)
            x = z @ weights + 0.5 * rng.normal(size=(m, features)).astype(np.float32)
            writer.write_table(pa.Table.from_arrays([pa.array(x[:, j]) for j in range(features)], schema=schema),
                               row_group_size=ROW_GROUP)


def child(path: Path, epochs: int, batch: int, seed: int) -> None:
    """In a fresh process: pretrain on the streamed file, print the figures as one JSON line."""
    # Imported in the measured child only: the parent, which writes the table, never loads torch.
    import torch

    from core.learning.pretrain import pretrain
    from core.learning.pretrain_config import PretrainConfig
    from core.learning.ssl.views import FeatureLayout
    from core.learning.streaming import ParquetChunks

    source = ParquetChunks(path, random_state=seed)
    start = time.perf_counter()
    result = pretrain(source, None, FeatureLayout.all_numeric(source.n_features),
                      PretrainConfig(method="scarf", epochs=epochs, batch_size=batch, seed=seed, device="cpu"))
    print(json.dumps({"rows_per_second": result.rows_per_second, "elapsed_s": time.perf_counter() - start,
                      "steps": result.steps, "row_groups": source.n_row_groups,
                      "torch_threads": torch.get_num_threads()}))


#: Adult repeated this many times for `--audit` (45,222 rows each).
AUDIT_MULTIPLES = (1, 2, 4)
#: Goal of per_row_growth: the whole audit's cost per row at x4 within 1.1 of its cost at x1.
GROWTH_GOAL = 1.1
#: The stages of timings.json recorded per size.
STAGES = ("study_s", "pretrain_s", "finetune_s", "variants_s", "audit_s", "total_s")


def write_adult(path: Path, multiple: int) -> int:
    """The bundled Adult repeated `multiple` times, as Parquet; returns the number of rows."""
    import pandas as pd  # the parent's only heavy imports; the audit runs in a child

    from core.data.datasets import load_bundled

    table = pd.concat([load_bundled("adult")] * multiple, ignore_index=True)
    table.to_parquet(path, index=False)
    return len(table)


def audit_sizes(multiples: tuple[int, ...], quick: bool) -> list[dict]:
    """One default audit per size in a child process: rows, wall, peak RSS and stage seconds."""
    sizes = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-audit-") as tmp:
        for multiple in multiples:
            data, out = Path(tmp) / f"adult_x{multiple}.parquet", Path(tmp) / f"run_x{multiple}"
            rows = write_adult(data, multiple)
            cmd = [PYTHON, "-m", "core.cli.main", "audit", "--data", str(data), "--target", "income",
                   "--sensitive", "sex,race", "--replicates", "1", "--out", str(out)]
            if quick:
                cmd += ["--epochs", "1", "--finetune-epochs", "1", "--n-boot", "50"]
            print(f"auditing Adult x{multiple} ({rows:,} rows)...", file=sys.stderr, flush=True)
            measured = run_measured(cmd, cwd=ROOT, capture=False)
            if measured.returncode != 0:
                raise RuntimeError(f"the audit of Adult x{multiple} failed (exit {measured.returncode})")
            timings = json.loads((out / "timings.json").read_text(encoding="utf-8"))
            sizes.append({"rows": rows, "wall_s": round(measured.wall_s, 1),
                          "peak_rss_gb": round(measured.peak_rss_bytes / GB, 3),
                          # The whole machine's busy share while it ran: other work slows a size, and says so here.
                          "cores_busy": round(float(np.mean([share for _, share in measured.busy])), 2)
                          if measured.busy else None,
                          **{stage: round(float(timings.get(stage, 0.0)), 1) for stage in STAGES},
                          "epochs_run": {w.get("strategy", w["task"]): len(w.get("epochs", []))
                                         for w in timings.get("work", []) if w.get("task") == "finetune"}})
    return sizes


def main_million(quick: bool) -> int:
    """Only the `million_rows` field, merged into the last scale_audit entry."""
    entry = dict(read_results(quick).get("scale_audit") or {})
    entry["million_rows"] = million_rows(100_000 if quick else MILLION)
    print(json.dumps(entry["million_rows"], indent=2))
    print(f"wrote scale_audit.million_rows to {merge_result('scale_audit', entry, quick=quick)}")
    return 0


def main_audit(quick: bool, million: bool = False) -> int:
    """The "scale_audit" entry (module docstring)."""
    sizes = audit_sizes(AUDIT_MULTIPLES[:2] if quick else AUDIT_MULTIPLES, quick)
    first, last = sizes[0], sizes[-1]
    growth = (last["wall_s"] / last["rows"]) / (first["wall_s"] / first["rows"])
    print(f"default audit, Adult x1..x{AUDIT_MULTIPLES[len(sizes) - 1]} ({machine_line()})")
    for size in sizes:
        print(f"  {size['rows']:>9,} rows: wall {size['wall_s']:.0f} s, peak {size['peak_rss_gb']:.2f} GB, "
              + ", ".join(f"{stage} {size[stage]:.0f}" for stage in STAGES))
    print(f"  per_row_growth {growth:.3f}  goal <= {GROWTH_GOAL}: {'met' if growth <= GROWTH_GOAL else 'NOT met'}")
    entry = {"value": round(growth, 3), "unit": "x wall per row", "peer": f"the goal, {GROWTH_GOAL}",
             "peer_value": GROWTH_GOAL, "ratio": round(GROWTH_GOAL / growth, 3), "goal": f"<= {GROWTH_GOAL}",
             "met": growth <= GROWTH_GOAL, "per_row_growth": round(growth, 3),
             "per_row_ms": {f"{s['rows']:,}": round(1000 * s["wall_s"] / s["rows"], 3) for s in sizes},
             "sizes": sizes, "machine": machine_line()}
    previous = read_results(quick).get("scale_audit") or {}
    if million:
        entry["million_rows"] = million_rows(100_000 if quick else MILLION)
    elif "million_rows" in previous:  # measured alone (--million-only): kept until measured again
        entry["million_rows"] = previous["million_rows"]
    path = merge_result("scale_audit", entry, quick=quick)
    print(f"wrote scale_audit to {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help=f"rows of the table (default {ROWS:,})")
    parser.add_argument("--features", type=int, default=FEATURES)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="100,000 rows (smoke check)")
    parser.add_argument("--audit", action="store_true", help="the scale_audit entry instead (see above)")
    parser.add_argument("--million", action="store_true", help="with --audit: also the million_rows field")
    parser.add_argument("--million-only", action="store_true", help="only scale_audit's million_rows field")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.million_only:
        return main_million(args.quick)
    if args.audit:
        return main_audit(args.quick, args.million)
    if args.child:
        child(Path(args.child), args.epochs, args.batch_size, args.seed)
        return 0
    rows = 100_000 if args.quick else args.rows

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        path = Path(tmp) / "table.parquet"
        start = time.perf_counter()
        write_table(path, rows, args.features, args.seed)
        print(f"wrote {rows:,} x {args.features} float32 ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - start:.1f} s; pretraining {args.epochs} epoch(s) streamed...", file=sys.stderr)
        cmd = [PYTHON, "-m", "bench.bench_scale", "--child", str(path), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
        measured = run_measured(cmd, cwd=ROOT)
        if measured.returncode != 0:
            raise RuntimeError(f"the training process failed (exit {measured.returncode})")
        result = last_json_line(measured.stdout)
    peak_gb = measured.peak_rss_bytes / GB
    print(f"SCARF on {rows:,} x {args.features} streamed from Parquet ({machine_line()})")
    print(f"  {result['rows_per_second']:,.0f} rows/s, peak RSS {peak_gb:.2f} GB  goal <= {BUDGET_GB:g} GB: "
          f"{'met' if peak_gb <= BUDGET_GB else 'NOT met'}")
    entry = {
        "value": round(peak_gb, 3), "unit": "GB peak RSS", "peer": f"a budget of {BUDGET_GB:g} GB",
        "peer_value": BUDGET_GB, "ratio": round(BUDGET_GB / peak_gb, 3), "goal": f"<= {BUDGET_GB:g} GB",
        "met": peak_gb <= BUDGET_GB, "rows_per_second": round(result["rows_per_second"], 1),
        "training_process_s": round(measured.wall_s, 1), "rows": rows, "features": args.features,
        "epochs": args.epochs, "row_groups": result["row_groups"], "torch_threads": result["torch_threads"],
        "machine": machine_line()}
    path = merge_result("scale_1m", entry, quick=args.quick)
    print(f"wrote scale_1m to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
