"""DDP under torchrun (2 CPU processes, gloo) reproduces the single-process run (SCARF, VAE, DeepCluster, MoCo).

Both runs use the same global batch (64 rows; 32 per rank under DDP), seed and views;
BatchNorm statistics are synchronised and SCARF's negatives are all-gathered, so the only
difference is floating-point summation order (gradients averaged over ranks, statistics
summed per rank). Tolerance: final training loss and validation losses within 1e-5
relative, every encoder tensor within 1e-5 absolute (measured: ~2e-7 and ~1e-7).

MoCo's queue of negative keys is gathered across ranks before enqueueing: every rank ends with
the same queue, the single-process run's (within 1e-5 absolute, like the encoder).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.learning.ssl.views import FeatureLayout
import core.learning.pretrain as solo_pretraining
from core.learning.pretrain import load_encoder, pretrain
from core.learning.pretrain_config import PretrainConfig

LOSS_RTOL = 1e-5
PARAM_ATOL = 1e-5
REPO = Path(__file__).resolve().parents[2]

# Run under torchrun: pretrain_ddp's main, recording the objective so that each rank can save
# its MoCo queue (pretrain returns the encoder only).
QUEUE_WORKER = """
import os, sys
import numpy as np
import core.learning.pretrain as pretrain_module
from core.learning import pretrain_ddp
states = []
fresh = pretrain_module._fresh_state
def recording(*args, **kwargs):
    states.append(fresh(*args, **kwargs))
    return states[-1]
pretrain_module._fresh_state = recording
code = pretrain_ddp.main(sys.argv[1:])
out = sys.argv[sys.argv.index("--out") + 1]
os.makedirs(out, exist_ok=True)
np.save(os.path.join(out, "queue_rank%s.npy" % os.environ["RANK"]), states[0].objective.queue.numpy())
sys.exit(code)
"""


def _run_ddp(method, synthetic_table, tmp_path, worker: list[str]):
    X = synthetic_table["X"]
    train, val = X[:384], X[384:512]
    layout = FeatureLayout.from_arrays(synthetic_table["column_of_feature"],
                                       synthetic_table["is_numeric"])
    config = PretrainConfig(method=method, encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16},
                            epochs=2, batch_size=64, seed=3, patience=0, device="cpu")
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "val.npy", val)
    (tmp_path / "layout.json").write_text(json.dumps(layout.to_dict()))
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         *worker, "--train", str(tmp_path / "train.npy"),
         "--val", str(tmp_path / "val.npy"), "--layout", str(tmp_path / "layout.json"),
         "--config", str(tmp_path / "config.json"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ddp = json.loads((tmp_path / "out" / "result.json").read_text())
    assert ddp["world_size"] == 2 and ddp["steps"] == 2 * (384 // 64)
    return ddp, train, val, layout, config


@pytest.mark.parametrize("method", ["scarf", "vae", "deepcluster"])
def test_two_process_run_matches_one_process(method, synthetic_table, tmp_path):
    ddp, train, val, layout, config = _run_ddp(method, synthetic_table, tmp_path,
                                               ["-m", "core.learning.pretrain_ddp"])
    single = pretrain(train, val, layout, config)
    _assert_matches(ddp, single, tmp_path)


def test_two_process_moco_holds_one_queue_on_every_rank_and_matches_one_process(
        synthetic_table, tmp_path, monkeypatch):
    (tmp_path / "worker.py").write_text(QUEUE_WORKER)
    ddp, train, val, layout, config = _run_ddp("moco", synthetic_table, tmp_path, [str(tmp_path / "worker.py")])
    queues = [np.load(tmp_path / "out" / f"queue_rank{r}.npy") for r in (0, 1)]
    np.testing.assert_array_equal(queues[0], queues[1])
    states = []
    fresh = solo_pretraining._fresh_state

    def recording(*args, **kwargs):
        states.append(fresh(*args, **kwargs))
        return states[-1]

    monkeypatch.setattr(solo_pretraining, "_fresh_state", recording)
    single = pretrain(train, val, layout, config)
    np.testing.assert_allclose(queues[0], states[0].objective.queue.numpy(), atol=PARAM_ATOL, rtol=0)
    _assert_matches(ddp, single, tmp_path)


def _assert_matches(ddp: dict, single, tmp_path) -> None:
    assert ddp["final_loss"] == pytest.approx(single.final_loss, rel=LOSS_RTOL)
    for a, b in zip(ddp["history"], single.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=LOSS_RTOL)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=LOSS_RTOL)
    encoder, _ = load_encoder(tmp_path / "out" / "encoder")
    reference = single.encoder.state_dict()
    for key, value in encoder.state_dict().items():
        np.testing.assert_allclose(value.double().numpy(), reference[key].double().numpy(),
                                   atol=PARAM_ATOL, rtol=0, err_msg=key)
