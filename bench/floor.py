"""The arithmetic floor of an audit's training: its matrix-product FLOPs over the machine's matmul rate.

    flops = training_flops(timings["work"], report["config"], n_features, layout)
    rate = matmul_rate(precision, threads=cores)           # FLOP/s, measured in this run
    floor_s = flops / rate

No implementation on this machine can train the same models in the same number of steps in
less time than `floor_s`: it counts only the matrix products (what torch's FlopCounterMode
counts: mm, addmm, bmm; 2 m n k each), none of the elementwise work, optimiser steps or data
movement, and divides by the rate of one large product on every core.

What is counted, from the work record each training task leaves in timings.json
(core.run.training): FLOPs per row of each kind of pass, measured by FlopCounterMode on the
real modules (the audit's encoder, objective and strategies, at the audit's batch size):
- pretraining: `steps` optimiser steps of `batch_size` rows (forward + backward of both views
  through encoder and projection head, and the loss), and `validation_passes` forward passes
  of the objective over `n_validation` rows;
- a fine-tuning that trains (bn-affine, gradual, full, supervised): per epoch, one forward +
  backward over `n_train` rows with that epoch's trainable parts (gradual: its unfrozen
  blocks; autograd then computes only the gradients needed), and one forward over `n_val`;
  then one forward over `n_val` for calibration;
- linear and bn-stats: one forward of the frozen encoder over n_train + n_val rows (bn-stats:
  one more over n_train to re-estimate the statistics); the L-BFGS head fit on 128 columns is
  not counted (under 1% of the encoder pass).
"""

from __future__ import annotations

import statistics
import time
from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from core.learning.finetune.strategies import configure_encoder
from core.learning.models import ClassifierHead, Encoder
from core.learning.pretrain_config import PretrainConfig
from core.learning.ssl import make_objective
from core.learning.ssl.views import FeatureLayout

PROBE_ROWS = 256  # rows of the measured passes (FLOPs per row do not depend on it but for the loss)


def matmul_rate(precision: str = "fp32", threads: int | None = None, n: int = 2048, repeats: int = 7) -> float:
    """FLOP/s of one n x n by n x n product in `precision` on `threads` torch threads (median
    of `repeats` after a warm-up): the rate no training step can beat."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            seconds.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return 2 * n ** 3 / statistics.median(seconds)


def _counted(function) -> int:
    with FlopCounterMode(display=False) as counter:
        function()
    return int(counter.get_total_flops())


def pretrain_flops_per_row(config: PretrainConfig, n_features: int, layout: FeatureLayout) -> tuple[float, float]:
    """(training FLOPs per row of a step, FLOPs per row of a validation pass) of `config`'s objective."""
    torch.manual_seed(0)
    objective = make_objective(config.method, config.encoder_config(n_features), layout, **config.method_params)
    x = torch.randn(config.batch_size, n_features)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        loss, _ = objective(*objective.make_views(x, generator))
        loss.backward()

    def validation() -> None:
        with torch.no_grad():
            objective.loss(x, generator)

    objective.train()
    train = _counted(step) / config.batch_size
    objective.eval()
    return train, _counted(validation) / config.batch_size


@lru_cache(maxsize=None)
def _finetune_flops_per_row(encoder_json: str, strategy: str, unfrozen: int) -> tuple[float, float]:
    """(forward + backward FLOPs per row of a training step with `unfrozen` top blocks
    trainable, forward FLOPs per row) for `strategy` on an encoder of these settings."""
    import json

    from core.learning.encoder_config import EncoderConfig

    encoder = Encoder(EncoderConfig(**json.loads(encoder_json)))
    head = ClassifierHead(encoder.embed_dim)
    x = torch.randn(PROBE_ROWS, encoder.config.input_dim)
    configure_encoder(encoder, strategy, unfrozen)

    def step() -> None:
        head(encoder(x)).sum().backward()

    def forward() -> None:
        with torch.no_grad():
            head(encoder(x))

    return _counted(step) / PROBE_ROWS, _counted(forward) / PROBE_ROWS


def training_flops(work: list[dict], config: dict, n_features: int, layout: FeatureLayout) -> dict[str, float]:
    """{"pretrain": FLOPs, "finetune": FLOPs, "total": FLOPs} of the tasks in `work` (module docstring)."""
    import json

    pretrain_config = PretrainConfig(method=config["method"], method_params=dict(config.get("method_params") or {}),
                                     encoder=dict(config.get("encoder") or {}), batch_size=config["batch_size"])
    encoder_json = json.dumps({"input_dim": n_features, **pretrain_config.encoder}, sort_keys=True)
    depth = pretrain_config.encoder_config(n_features).depth
    per_step_row, per_validation_row = pretrain_flops_per_row(pretrain_config, n_features, layout)
    totals = {"pretrain": 0.0, "finetune": 0.0}
    for task in work:
        if task["task"] == "pretrain":
            totals["pretrain"] += (task["steps"] * task["batch_size"] * per_step_row
                                   + task["validation_passes"] * task["n_validation"] * per_validation_row)
            continue
        strategy, n_train, n_val = task["strategy"], task["n_train"], task["n_val"]
        _, forward = _finetune_flops_per_row(encoder_json, "linear", 0)
        if strategy in ("linear", "bn-stats"):
            passes = n_train + n_val + (n_train if strategy == "bn-stats" else 0)
            totals["finetune"] += passes * forward
            continue
        for epoch in task["epochs"]:
            unfrozen = epoch.get("unfrozen_blocks", depth)
            step, _ = _finetune_flops_per_row(encoder_json, strategy, unfrozen)
            totals["finetune"] += n_train * step + n_val * forward
        totals["finetune"] += n_val * forward  # temperature scaling's logits
    totals["total"] = totals["pretrain"] + totals["finetune"]
    return totals
