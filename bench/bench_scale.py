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

from bench.common import GB, PYTHON, last_json_line, machine_line, merge_result, run_measured  # noqa: E402

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help=f"rows of the table (default {ROWS:,})")
    parser.add_argument("--features", type=int, default=FEATURES)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="100,000 rows (smoke check)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
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
