"""DDP under torchrun (2 CPU processes, gloo) reproduces the single-process run.

Both runs use the same global batch (64 rows; 32 per rank under DDP), seed and views;
BatchNorm statistics are synchronised and SCARF's negatives are all-gathered, so the only
difference is floating-point summation order (gradients averaged over ranks, statistics
summed per rank). Tolerance: final training loss and validation losses within 1e-5
relative, every encoder tensor within 1e-5 absolute (measured: ~2e-7 and ~1e-7).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core.learning.ssl.views import FeatureLayout
from core.learning.pretrain import load_encoder, pretrain
from core.learning.pretrain_config import PretrainConfig

LOSS_RTOL = 1e-5
PARAM_ATOL = 1e-5


def test_two_process_scarf_matches_one_process(synthetic_table, tmp_path):
    X = synthetic_table["X"]
    train, val = X[:384], X[384:512]
    layout = FeatureLayout.from_arrays(synthetic_table["column_of_feature"],
                                       synthetic_table["is_numeric"])
    config = PretrainConfig(method="scarf", encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16},
                            epochs=2, batch_size=64, seed=3, patience=0, device="cpu")
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "val.npy", val)
    (tmp_path / "layout.json").write_text(json.dumps(layout.to_dict()))
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "core.learning.pretrain_ddp", "--train", str(tmp_path / "train.npy"),
         "--val", str(tmp_path / "val.npy"), "--layout", str(tmp_path / "layout.json"),
         "--config", str(tmp_path / "config.json"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ddp = json.loads((tmp_path / "out" / "result.json").read_text())
    assert ddp["world_size"] == 2 and ddp["steps"] == 2 * (384 // 64)

    single = pretrain(train, val, layout, config)
    assert ddp["final_loss"] == pytest.approx(single.final_loss, rel=LOSS_RTOL)
    for a, b in zip(ddp["history"], single.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=LOSS_RTOL)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=LOSS_RTOL)
    encoder, _ = load_encoder(tmp_path / "out" / "encoder")
    reference = single.encoder.state_dict()
    for key, value in encoder.state_dict().items():
        np.testing.assert_allclose(value.double().numpy(), reference[key].double().numpy(),
                                   atol=PARAM_ATOL, rtol=0, err_msg=key)
