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

# SCARF goes through the product's entry as a user runs it (`torchrun -m core.learning.pretrain_ddp`,
# which joins and leaves the process group itself). The other methods share one launch (~10 s each
# here): WORKER runs pretrain_ddp's main on each method's folder in turn, recording the objective so that each rank can save MoCo's queue
# (pretrain returns the encoder only). The process group is joined here, once: pretrain then uses it
# and leaves it up (a group torn down and created again in one process hung).
WORKER = """
import os, sys
import numpy as np
import torch.distributed as torch_dist
import core.learning.pretrain as pretrain_module
from core.learning import pretrain_ddp
torch_dist.init_process_group("gloo")
states = []
fresh = pretrain_module._fresh_state
def recording(*args, **kwargs):
    states.append(fresh(*args, **kwargs))
    return states[-1]
pretrain_module._fresh_state = recording
for folder in sys.argv[1:]:
    states.clear()
    code = pretrain_ddp.main(["--train", os.path.join(folder, "train.npy"), "--val", os.path.join(folder, "val.npy"),
                              "--layout", os.path.join(folder, "layout.json"),
                              "--config", os.path.join(folder, "config.json"), "--out", os.path.join(folder, "out")])
    if code:
        sys.exit(code)
    queue = getattr(states[0].objective, "queue", None)
    if queue is not None:
        os.makedirs(os.path.join(folder, "out"), exist_ok=True)  # rank 0 alone writes the encoder
        np.save(os.path.join(folder, "out", "queue_rank%s.npy" % os.environ["RANK"]), queue.numpy())
torch_dist.destroy_process_group()
"""


def _inputs(method: str, synthetic_table):
    X = synthetic_table["X"]
    train, val = X[:384], X[384:512]
    layout = FeatureLayout.from_arrays(synthetic_table["column_of_feature"],
                                       synthetic_table["is_numeric"])
    config = PretrainConfig(method=method, encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16},
                            epochs=2, batch_size=64, seed=3, patience=0, device="cpu")
    return train, val, layout, config


SHARED_LAUNCH = ("vae", "deepcluster", "moco")


def _write_inputs(method: str, synthetic_table, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    train, val, layout, config = _inputs(method, synthetic_table)
    np.save(folder / "train.npy", train)
    np.save(folder / "val.npy", val)
    (folder / "layout.json").write_text(json.dumps(layout.to_dict()))
    (folder / "config.json").write_text(json.dumps(config.to_dict()))


def _torchrun(*program: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                *program], capture_output=True, text=True, timeout=180, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]


@pytest.fixture(scope="module")
def ddp_runs(synthetic_table, tmp_path_factory) -> Path:
    """SCARF through the product's entry, then one launch for the methods of SHARED_LAUNCH; a folder each."""
    root = tmp_path_factory.mktemp("ddp")
    for method in ("scarf", *SHARED_LAUNCH):
        _write_inputs(method, synthetic_table, root / method)
    scarf = root / "scarf"
    _torchrun("-m", "core.learning.pretrain_ddp", "--train", str(scarf / "train.npy"), "--val", str(scarf / "val.npy"),
              "--layout", str(scarf / "layout.json"), "--config", str(scarf / "config.json"), "--out", str(scarf / "out"))
    (root / "worker.py").write_text(WORKER)
    _torchrun(str(root / "worker.py"), *(str(root / method) for method in SHARED_LAUNCH))
    return root


def _ddp_result(ddp_runs: Path, method: str) -> dict:
    ddp = json.loads((ddp_runs / method / "out" / "result.json").read_text())
    assert ddp["world_size"] == 2 and ddp["steps"] == 2 * (384 // 64)
    return ddp


@pytest.mark.parametrize("method", ["scarf", "vae", "deepcluster"])
def test_two_process_run_matches_one_process(method, synthetic_table, ddp_runs):
    train, val, layout, config = _inputs(method, synthetic_table)
    single = pretrain(train, val, layout, config)
    _assert_matches(_ddp_result(ddp_runs, method), single, ddp_runs / method)


def test_two_process_moco_holds_one_queue_on_every_rank_and_matches_one_process(
        synthetic_table, ddp_runs, monkeypatch):
    ddp = _ddp_result(ddp_runs, "moco")
    queues = [np.load(ddp_runs / "moco" / "out" / f"queue_rank{r}.npy") for r in (0, 1)]
    np.testing.assert_array_equal(queues[0], queues[1])
    states = []
    fresh = solo_pretraining._fresh_state

    def recording(*args, **kwargs):
        states.append(fresh(*args, **kwargs))
        return states[-1]

    monkeypatch.setattr(solo_pretraining, "_fresh_state", recording)
    train, val, layout, config = _inputs("moco", synthetic_table)
    single = pretrain(train, val, layout, config)
    np.testing.assert_allclose(queues[0], states[0].objective.queue.numpy(), atol=PARAM_ATOL, rtol=0)
    _assert_matches(ddp, single, ddp_runs / "moco")


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
