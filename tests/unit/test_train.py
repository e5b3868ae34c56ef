"""The pretraining loop: determinism, cancel, resume, checkpoints without pickle, events,
early stopping, schedule, streaming sources, input errors."""

from __future__ import annotations

import filecmp
import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors import safe_open

from core.learning.checkpoint import load_training_state
from core.errors import InputError
from core.learning.ssl.views import FeatureLayout
from core.learning.streaming import ArrayChunks, ParquetChunks, stream_batches
from core.learning.pretrain import _lr_at, load_encoder, pretrain, resolve_device, save_encoder
from core.learning.pretrain_config import PretrainConfig

ENCODER = {"hidden_dim": 32, "depth": 2, "embed_dim": 16}


@pytest.fixture(scope="module")
def data(synthetic_table):
    t = synthetic_table
    return {"train": t["X"][:400], "val": t["X"][400:520],
            "layout": FeatureLayout.from_arrays(t["column_of_feature"], t["is_numeric"])}


def _config(**overrides) -> PretrainConfig:
    base = dict(method="scarf", encoder=ENCODER, epochs=4, batch_size=64, seed=7, patience=0)
    return PretrainConfig(**{**base, **overrides})


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        filecmp.cmp(a / n, b / n, shallow=False) for n in names)


def test_same_seed_gives_identical_checkpoint_bytes(data, tmp_path):
    for name in ("a", "b"):
        pretrain(data["train"], data["val"], data["layout"], _config(method="byol"),
                 checkpoint_dir=tmp_path / name)
    assert _same_files(tmp_path / "a", tmp_path / "b")
    pretrain(data["train"], data["val"], data["layout"], _config(method="byol", seed=8),
             checkpoint_dir=tmp_path / "c")
    assert not _same_files(tmp_path / "a", tmp_path / "c")


def test_cancel_then_resume_equals_an_uninterrupted_run(data, tmp_path):
    config = _config(method="swav")
    full = pretrain(data["train"], data["val"], data["layout"], config,
                    checkpoint_dir=tmp_path / "full")
    calls = {"n": 0}

    def stop_in_epoch_3() -> bool:  # 6 steps per epoch: stop at the 3rd step of epoch 3
        calls["n"] += 1
        return calls["n"] == 2 * 6 + 3

    cancelled = pretrain(data["train"], data["val"], data["layout"], config,
                         should_stop=stop_in_epoch_3, checkpoint_dir=tmp_path / "resumed")
    assert cancelled.cancelled and cancelled.epochs_completed == 2 and cancelled.steps == 15
    assert json.loads((tmp_path / "resumed" / "state.json").read_text())["epoch"] == 2
    resumed = pretrain(data["train"], data["val"], data["layout"], config,
                       checkpoint_dir=tmp_path / "resumed", resume=True)
    assert not resumed.cancelled and resumed.epochs_completed == 4
    assert resumed.history == full.history and resumed.final_loss == full.final_loss
    for key, value in full.encoder.state_dict().items():
        assert torch.equal(value, resumed.encoder.state_dict()[key]), key
    assert _same_files(tmp_path / "full", tmp_path / "resumed")


def test_resume_with_other_settings_is_refused(data, tmp_path):
    pretrain(data["train"], None, data["layout"], _config(epochs=1), checkpoint_dir=tmp_path)
    with pytest.raises(InputError, match="other settings"):
        pretrain(data["train"], None, data["layout"], _config(epochs=1, lr=0.5),
                 checkpoint_dir=tmp_path, resume=True)


def test_checkpoints_and_encoders_load_without_pickle(data, tmp_path, monkeypatch):
    result = pretrain(data["train"], data["val"], data["layout"], _config(epochs=2),
                      checkpoint_dir=tmp_path / "ckpt")
    save_encoder(tmp_path / "enc", result.encoder, result.config)
    with safe_open(str(tmp_path / "ckpt" / "epoch_0002.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {"rng.generator", "rng.torch"} <= keys
    assert any(k.startswith("optim.") and k.endswith("exp_avg") for k in keys)
    assert any(k.startswith("best.blocks.") for k in keys)

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle used while loading")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(torch, "load", no_pickle)
    encoder, config = load_encoder(tmp_path / "enc")
    assert config == result.encoder.config
    for key, value in result.encoder.state_dict().items():
        assert torch.equal(value, encoder.state_dict()[key])
    assert load_training_state(tmp_path / "ckpt")[1]["epoch"] == 2
    resumed = pretrain(data["train"], data["val"], data["layout"], _config(epochs=2),
                       checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.steps == result.steps  # nothing left to train: state came from the files
    with pytest.raises(InputError, match="no saved encoder"):
        load_encoder(tmp_path)


def test_events_and_result(data):
    events = []
    result = pretrain(data["train"], data["val"], data["layout"], _config(epochs=3),
                      on_event=events.append)
    ends = [e for e in events if e["message"].endswith("done")]
    assert [e["epoch"] for e in ends] == [1, 2, 3]
    keys = {"stage", "epoch", "epochs", "step", "total_steps", "loss", "val_loss",
            "rows_per_second", "elapsed", "fraction"}
    assert all(keys <= set(e) for e in ends)
    assert ends[-1]["fraction"] == 1.0 and ends[-1]["step"] == result.total_steps == 18
    assert result.rows_per_second > 0 and len(result.history) == 3
    assert result.best_epoch == 1 + int(np.argmin([h["val_loss"] for h in result.history]))
    assert json.dumps(result.to_dict())  # JSON-able summary


def test_early_stopping_keeps_the_best_epoch(data, tmp_path):
    # min_delta larger than any possible gain: epoch 1 stays best, stop after `patience`
    config = _config(epochs=10, patience=2, min_delta=1e9)
    result = pretrain(data["train"], data["val"], data["layout"], config, checkpoint_dir=tmp_path)
    assert result.stopped_early and result.epochs_completed == 3 and result.best_epoch == 1
    tensors, _ = load_training_state(tmp_path)
    for key, value in result.encoder.state_dict().items():
        assert torch.equal(value, tensors[f"best.{key}"])
    weight = "blocks.0.linear.weight"  # the last epoch's weights moved on from the best ones
    assert not torch.equal(result.encoder.state_dict()[weight], tensors[f"model.encoder.{weight}"])


def test_learning_rate_schedule():
    config = PretrainConfig(lr=1.0, warmup_fraction=0.1, min_lr_ratio=0.0)
    lrs = [_lr_at(t, 100, config) for t in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[55] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 0.001


def test_streaming_sources(data, tmp_path):
    X = data["train"]
    source = ArrayChunks(X, chunk_rows=70)
    batches = list(stream_batches(source, 0, 64, torch.Generator().manual_seed(0),
                                  torch.device("cpu")))
    assert len(batches) == len(X) // 64
    rows = torch.cat(batches).numpy()
    assert len(np.unique(rows, axis=0)) == len(rows)  # each row at most once per epoch
    result = pretrain(source, data["val"], data["layout"], _config(epochs=3))
    assert result.steps == 3 * (len(X) // 64) and result.best_val_loss < result.initial_val_loss

    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({f"f{j}": X[:, j] for j in range(X.shape[1])}), path,
                   row_group_size=100)
    parquet = ParquetChunks(path)
    assert (parquet.n_rows, parquet.n_features, parquet.n_row_groups) == (400, X.shape[1], 4)
    chunks = list(parquet.chunks(0))
    np.testing.assert_array_equal(np.sort(np.concatenate(chunks), axis=0), np.sort(X, axis=0))
    assert pretrain(parquet, None, data["layout"], _config(epochs=1)).steps == 6


def test_input_errors(data):
    layout = data["layout"]
    for bad, match in ((dict(epochs=0), "epochs"), (dict(method="nope"), "unknown pretraining"),
                       (dict(method_params={"tau": 1}), "unknown parameter"),
                       (dict(batch_size=1), "batch size"),
                       (dict(encoder={"input_dim": 3}), "input_dim"),
                       (dict(encoder={"depht": 3}), "encoder settings")):
        with pytest.raises(InputError, match=match):
            pretrain(data["train"], None, layout, _config(**bad))
    with pytest.raises(InputError, match="features"):
        pretrain(data["train"][:, :5], None, layout, _config())
    with pytest.raises(InputError, match="too few"):
        pretrain(data["train"][:1], None, layout, _config())
    broken = data["train"].copy()
    broken[3, 2] = np.nan
    with pytest.raises(InputError, match="finite"):
        pretrain(broken, None, layout, _config())
    with pytest.raises(InputError, match="diverged"):
        pretrain(data["train"], None, layout, _config(method="vicreg", lr=1e30, epochs=1,
                                                      warmup_fraction=0.0))


def test_device_is_chosen_automatically():
    assert resolve_device("auto").type in {"cuda", "mps", "cpu"}
    assert resolve_device("cpu") == torch.device("cpu")
