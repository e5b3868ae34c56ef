"""Benchmark: SCARF pretraining of 5 replicates the way the audit trains them, against one after another.

Ours: the audit's training stage for pretraining alone: 5 replicates of SCARF (the audit's
encoder, batch size and epochs, seeds from core.run.config.replicate_seeds) as tasks on the
audit's worker pool (core.run.training.pretrain_one on core.run.parallel.Workers with one worker
per core, one torch thread each), in the precision the audit would choose here ("auto").
Peer: the same 5 pretrainings, same data and seeds, one after another in this process, fp32,
with the loop as it was before replicates were scheduled on the pool (core.learning.pretrain
in the audit's process, one thread).

Both train the same rows (Adult's pretraining split, validation on its validation split); rows/s
= training rows stepped through (5 x steps x batch) over wall seconds. The pool is started
and warmed (its processes have imported torch) before the clock starts: start-up is reported
beside it, not counted, since the audit starts its pool once for every stage.
ratio = ours / peer (goal >= 1.8 on 2 cores).

"matmul_share": the achieved FLOP/s (matrix-product FLOPs per row of a step, bench.floor, times
rows/s) over the matmul rate of the precision used on every core (bench.floor.matmul_rate),
measured in the same run (goal >= 60%).

    python -m bench.bench_replicates [--epochs 3] [--replicates 5] [--quick]

Writes "replicates_throughput" into bench/results.json (merged with what is there).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: python bench/bench_replicates.py
    sys.path.insert(0, str(ROOT))

from bench.common import adult_matrix, machine, machine_line, merge_result  # noqa: E402
from bench.floor import matmul_rate, pretrain_flops_per_row  # noqa: E402
from core.learning.precision import resolve_precision  # noqa: E402
from core.learning.pretrain import pretrain  # noqa: E402
from core.learning.pretrain_config import PretrainConfig  # noqa: E402
from core.run.config import AuditConfig, replicate_seeds  # noqa: E402
from core.run.parallel import Task, Workers, default_workers  # noqa: E402
from core.run.training import pretrain_one  # noqa: E402

GOAL_RATIO = 1.8
GOAL_SHARE = 0.60
AUDIT = AuditConfig(data="adult", target="income", sensitive=["sex"])


def time_ours(X_train, X_val, layout, configs: list[PretrainConfig], workers: int, folder: Path) -> tuple[float, float, int]:
    """(wall seconds of the pretrainings, seconds to start and warm the pool, steps) on the pool."""
    started = time.perf_counter()
    with Workers(workers) as pool:
        pool.gather([pool.submit(torch.get_num_threads) for _ in range(workers)])  # imports torch there
        warm = time.perf_counter() - started
        start = time.perf_counter()
        results = pool.run([Task(0, r, pretrain_one, (X_train, X_val, layout, config, r, folder / f"r{r}", 1))
                            for r, config in enumerate(configs)])
        seconds = time.perf_counter() - start
    return seconds, warm, sum(result.steps for result in results.values())


def time_peer(X_train, X_val, layout, configs: list[PretrainConfig], folder: Path) -> tuple[float, int]:
    """(wall seconds, steps) of the same pretrainings one after another in this process, fp32."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    steps = sum(pretrain(X_train, X_val, layout, replace(config, precision="fp32"),
                         checkpoint_dir=folder / f"peer{r}").steps for r, config in enumerate(configs))
    return time.perf_counter() - start, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="pretraining epochs of each replicate (default 3)")
    parser.add_argument("--replicates", type=int, default=AUDIT.replicates)
    parser.add_argument("--quick", action="store_true", help="1 epoch, 2 replicates (smoke check)")
    args = parser.parse_args(argv)
    epochs, replicates = (1, 2) if args.quick else (args.epochs, args.replicates)

    adult = adult_matrix()
    split = adult.study.split
    X_train, X_val = adult.X[split.pretrain], adult.X[split.validation]
    precision = resolve_precision(AUDIT.precision, torch.device("cpu"))
    base = PretrainConfig(method=AUDIT.method, encoder=dict(AUDIT.encoder), epochs=epochs, batch_size=AUDIT.batch_size,
                          patience=AUDIT.pretrain_patience, device="cpu", precision=precision)
    configs = [replace(base, seed=seed) for seed in replicate_seeds(AUDIT.seed, replicates)]
    workers = default_workers()
    with tempfile.TemporaryDirectory(prefix="bench-replicates-") as tmp:
        ours_s, warm_s, ours_steps = time_ours(X_train, X_val, adult.layout, configs, workers, Path(tmp))
        peer_s, peer_steps = time_peer(X_train, X_val, adult.layout, configs, Path(tmp))
    if ours_steps != peer_steps:
        raise RuntimeError(f"the two ways trained different numbers of steps ({ours_steps} vs {peer_steps})")
    rows = ours_steps * base.batch_size
    ours, peer = rows / ours_s, rows / peer_s
    flops_per_row, _ = pretrain_flops_per_row(base, X_train.shape[1], adult.layout)
    rate = matmul_rate(precision, threads=machine()["cores"])
    share = ours * flops_per_row / rate
    info = machine()
    met = ours / peer >= GOAL_RATIO and share >= GOAL_SHARE
    print(f"{replicates} SCARF replicates x {epochs} epochs on {len(X_train):,} Adult rows ({machine_line(info)})")
    print(f"  ours: {ours:,.0f} rows/s on {workers} workers ({precision}; pool start-up {warm_s:.1f} s, not counted)")
    print(f"  peer: {peer:,.0f} rows/s one after another (fp32, 1 thread)")
    print(f"  ratio {ours / peer:.2f} (goal >= {GOAL_RATIO}); matmul share {share:.1%} of {rate / 1e9:.0f} GFLOP/s "
          f"(goal >= {GOAL_SHARE:.0%}): {'met' if met else 'NOT met'}")
    entry = {"value": round(ours, 1), "unit": "rows/s", "peer": "the same replicates one after another in one process "
             "(fp32, 1 thread), as the audit trained them before", "peer_value": round(peer, 1),
             "ratio": round(ours / peer, 3), "goal": f"ratio >= {GOAL_RATIO} and matmul_share >= {GOAL_SHARE:.0%}",
             "met": met, "matmul_share": round(share, 3), "matmul_gflops": round(rate / 1e9, 1),
             "achieved_gflops": round(ours * flops_per_row / 1e9, 1), "flops_per_row": round(flops_per_row),
             "precision": precision, "workers": workers, "pool_startup_s": round(warm_s, 2), "replicates": replicates,
             "epochs": epochs, "rows": len(X_train), "steps": ours_steps, "machine": machine_line(info)}
    path = merge_result("replicates_throughput", entry, quick=args.quick)
    print(f"wrote replicates_throughput to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
