"""Benchmark: SCARF pretraining throughput (rows/s) on Adult, ours against the usual way of writing it.

Ours: `core.learning.pretrain.pretrain` with method "scarf" and the default encoder (MLP 256-256-128 with
BatchNorm, projection head 128-256-128) on the pretraining rows of Adult's encoded matrix:
the matrix lives on the device as one tensor, each batch is one indexed slice of a seeded
permutation, and both views come from one batched corruption (`core.learning.ssl.views`).

Peer: the same encoder and head (`core.learning.models`) and the same InfoNCE loss
(`core.learning.ssl.contrastive.info_nce`, temperature 1.0) trained the way public SCARF
reimplementations do it: a torch `Dataset` whose `__getitem__` corrupts ONE row (a
per-feature Bernoulli(0.6) mask and replacement values taken from uniformly drawn other
rows, in numpy), a `DataLoader` (the audit's batch size, 512, shuffle, num_workers=0, incomplete last batch
dropped as ours does) and AdamW at the same learning rate and weight decay.

Both train for the same number of epochs at the same batch size and torch thread count
(OMP_NUM_THREADS; where other work takes a core, torch's default of one thread per core
makes every small matmul wait for the descheduled thread: set 1 there);
rows/s is measured over the epochs after the first (warm-up). ratio = ours / peer. Information
only: the old goal (ratio >= 3) is retired (issue 15): measured at 2.1-2.6, it depends on the
machine's per-row Python cost more than on us; `replicates_throughput` and the audit's floor
are the goals now.

Also reported, in the same entry: "matmul_share", the training step's achieved GFLOP/s over
the machine's fp32 matmul rate (torch.mm of two 2048 x 2048 matrices, median after warm-up).
FLOPs per row ~= 3 (forward + backward) x 2 (multiply-add) x (2 views x the sum of
in x out over the Linear layers of encoder and head + proj_dim x batch for the logits).
Stretch goal 40%.

    python -m bench.bench_pretrain [--epochs 3] [--quick]

Writes "pretrain_throughput" into bench/results.json (merged with what is there).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: python bench/bench_pretrain.py
    sys.path.insert(0, str(ROOT))

from bench.common import adult_matrix, machine, machine_line, merge_result  # noqa: E402
from core.learning.models import Encoder, EncoderConfig, MLPHead  # noqa: E402
from core.run.pipeline import AuditConfig  # noqa: E402
from core.learning.ssl.contrastive import Scarf, info_nce  # noqa: E402
from core.learning.ssl.views import FeatureLayout  # noqa: E402
from core.learning.pretrain import pretrain  # noqa: E402
from core.learning.pretrain_config import PretrainConfig  # noqa: E402

AUDIT_BATCH_SIZE = AuditConfig.__dataclass_fields__["batch_size"].default
GOAL_RATIO = 3.0  # retired (module docstring); printed for comparison with earlier figures
STRETCH_MATMUL_SHARE = 0.40
MATMUL_N = 2048


def time_ours(X: np.ndarray, layout: FeatureLayout, epochs: int, batch: int, seed: int) -> float:
    """Rows/s of core.learning.pretrain.pretrain over epochs 2..E. Each epoch-end event carries the
    cumulative training rows/s (validation and checkpoints excluded), from which the
    training seconds up to that epoch are step x batch / rows_per_second."""
    ends: list[tuple[int, float]] = []

    def on_event(event: dict) -> None:
        if event.get("message", "").endswith("done"):
            ends.append((event["step"], event["step"] * batch / event["rows_per_second"]))

    config = PretrainConfig(method="scarf", epochs=epochs, batch_size=batch, seed=seed, device="cpu")
    pretrain(X, None, layout, config, on_event=on_event)
    (step_1, seconds_1), (step_e, seconds_e) = ends[0], ends[-1]
    return (step_e - step_1) * batch / (seconds_e - seconds_1)


class RowCorruptionDataset(torch.utils.data.Dataset):
    """SCARF as public reimplementations write it: one row at a time, per-feature mask."""

    def __init__(self, X: np.ndarray, corruption_rate: float, seed: int) -> None:
        self.X = X
        self.rate = corruption_rate
        self.rng = np.random.default_rng(seed)
        self.features = np.arange(X.shape[1])

    def __len__(self) -> int:
        return self.X.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.X[index]
        mask = self.rng.random(self.X.shape[1]) < self.rate
        donors = self.rng.integers(0, self.X.shape[0], size=self.X.shape[1])
        x_tilde = np.where(mask, self.X[donors, self.features], x)
        return torch.tensor(x, dtype=torch.float32), torch.tensor(x_tilde, dtype=torch.float32)


def peer_model(d: int) -> tuple[Encoder, MLPHead]:
    p = Scarf.defaults
    encoder = Encoder(EncoderConfig(input_dim=d))
    return encoder, MLPHead(encoder.embed_dim, p["proj_hidden"], p["proj_dim"], p["proj_depth"])


def time_peer(X: np.ndarray, epochs: int, batch: int, seed: int) -> float:
    """Rows/s of the Dataset/DataLoader loop over epochs 2..E."""
    torch.manual_seed(seed)
    encoder, head = peer_model(X.shape[1])
    config = PretrainConfig()
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    dataset = RowCorruptionDataset(X, Scarf.defaults["corruption_rate"], seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=0, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    temperature = Scarf.defaults["temperature"]
    encoder.train()
    head.train()
    rows, seconds = 0, 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        for anchor, positive in loader:
            z = head(encoder(anchor))
            z_tilde = head(encoder(positive))
            loss = info_nce(z, z_tilde, torch.arange(z.shape[0]), temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if epoch > 0:
            seconds += time.perf_counter() - start
            rows += len(loader) * batch
    return rows / seconds


def matmul_gflops(n: int = MATMUL_N, repeats: int = 10) -> float:
    """The machine's fp32 matmul rate at the current torch thread count (median, GFLOP/s)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def flops_per_row(d: int, batch: int) -> float:
    """Training FLOPs per row (see the module docstring)."""
    encoder, head = peer_model(d)
    linear = sum(m.in_features * m.out_features for part in (encoder, head)
                 for m in part.modules() if isinstance(m, nn.Linear))
    return 3 * 2 * (2 * linear + Scarf.defaults["proj_dim"] * batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each side (the first is not timed)")
    parser.add_argument("--batch-size", type=int, default=AUDIT_BATCH_SIZE,
                        help="rows per step on both sides (default: the audit's, %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="8,192 rows, 2 epochs (smoke check)")
    args = parser.parse_args(argv)
    epochs = 2 if args.quick else max(args.epochs, 2)

    adult = adult_matrix(args.seed)
    X = np.ascontiguousarray(adult.X[adult.study.split.pretrain], dtype=np.float32)
    if args.quick:
        X = X[:8192]
    n, d = X.shape
    print(f"SCARF pretraining on {n} Adult rows x {d} encoded features, batch {args.batch_size}, "
          f"{epochs} epochs ({machine_line()})", file=sys.stderr)

    ours = time_ours(X, adult.layout, epochs, args.batch_size, args.seed)
    peer = time_peer(X, epochs, args.batch_size, args.seed)
    peak = matmul_gflops()
    achieved = flops_per_row(d, args.batch_size) * ours / 1e9
    share = achieved / peak
    info = machine()
    print(f"  ours (core.learning.pretrain.pretrain): {ours:,.0f} rows/s")
    print(f"  peer (per-row Dataset + DataLoader): {peer:,.0f} rows/s")
    print(f"  ratio ours/peer: {ours / peer:.2f} (information; the ratio >= {GOAL_RATIO:g} goal is retired)")
    print(f"  matmul share: {achieved:.1f} GFLOP/s of {peak:.1f} GFLOP/s = {share:.0%} "
          f"(stretch goal {STRETCH_MATMUL_SHARE:.0%})")
    entry = {
        "value": round(ours, 1), "unit": "rows/s",
        "peer": f"per-row corruption in a torch Dataset + DataLoader (batch {args.batch_size}, num_workers=0), "
                "same encoder and loss",
        "peer_value": round(peer, 1), "ratio": round(ours / peer, 3), "goal": f"none: information (ratio >= {GOAL_RATIO:g} retired)",
        "matmul_share": round(share, 4), "matmul_share_goal": f">= {STRETCH_MATMUL_SHARE:.0%} (stretch)",
        "achieved_gflops": round(achieved, 2), "matmul_gflops": round(peak, 2),
        "flops_per_row": flops_per_row(d, args.batch_size),
        "rows": n, "features": d, "epochs": epochs, "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(), "machine": machine_line(info)}
    path = merge_result("pretrain_throughput", entry, quick=args.quick)
    print(f"wrote pretrain_throughput to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
