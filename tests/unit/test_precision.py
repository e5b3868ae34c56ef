"""Training precision: "auto" picks bfloat16 only where it is native, bf16 runs under autocast
and stays close to fp32, and the choice reaches the report and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.learning import precision as precision_module
from core.learning.finetune.config import FinetuneConfig
from core.learning.finetune.training import train_supervised
from core.learning.models import EncoderConfig
from core.learning.precision import autocast, resolve_precision
from core.learning.pretrain import pretrain
from core.learning.pretrain_config import PretrainConfig
from core.learning.ssl.views import FeatureLayout
from core.run.config import AuditConfig

ENCODER = {"hidden_dim": 32, "depth": 2, "embed_dim": 16}


def test_auto_is_bf16_only_where_the_device_has_it(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision_module, "native_bf16", lambda device: False)
    assert resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(precision_module, "native_bf16", lambda device: True)
    assert resolve_precision("auto", cpu) == "bf16"
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError):
        resolve_precision("fp16", cpu)


def test_bf16_autocast_runs_matrix_products_in_bf16_and_fp32_does_not():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with autocast("bf16", torch.device("cpu")):
        assert layer(x).dtype == torch.bfloat16
    with autocast("fp32", torch.device("cpu")):
        assert layer(x).dtype == torch.float32


def _rows(seed: int = 0, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)


def test_bf16_pretraining_is_recorded_and_close_to_fp32_but_not_identical():
    X, _ = _rows()
    layout = FeatureLayout.from_arrays(np.arange(6), np.ones(6, dtype=bool))
    runs = {p: pretrain(X[:192], X[192:], layout, PretrainConfig(method="scarf", encoder=ENCODER, epochs=2,
                                                                 batch_size=64, device="cpu", precision=p))
            for p in ("fp32", "bf16")}
    assert runs["fp32"].precision == "fp32" and runs["bf16"].precision == "bf16"
    fp32, bf16 = runs["fp32"].best_val_loss, runs["bf16"].best_val_loss
    assert fp32 != bf16 and abs(fp32 - bf16) < 0.05 * abs(fp32)
    for weights in runs["bf16"].encoder.state_dict().values():  # the weights stay fp32 tensors
        assert weights.dtype in (torch.float32, torch.int64)


def test_bf16_fine_tuning_learns_what_fp32_learns():
    X, y = _rows(n=1200)
    config = FinetuneConfig(strategy="supervised", epochs=30, batch_size=128, seed=0)
    models = {p: train_supervised(X[:800], y[:800], X[800:1000], y[800:1000], config,
                                  EncoderConfig(input_dim=6, **ENCODER), precision=p) for p in ("fp32", "bf16")}
    accuracy = {p: float(((m.predict_proba(X[1000:]) > 0.5) == y[1000:]).mean()) for p, m in models.items()}
    assert accuracy["fp32"] > 0.8 and abs(accuracy["fp32"] - accuracy["bf16"]) <= 0.05
    # ...and bf16 really ran: the two models are not the same numbers
    assert not np.array_equal(models["fp32"].predict_proba(X[1000:]), models["bf16"].predict_proba(X[1000:]))


def test_the_audit_refuses_an_unknown_device_or_precision():
    base = {"data": "german", "target": "credit", "sensitive": ["sex"]}
    with pytest.raises(InputError, match="precision"):
        AuditConfig(**base, precision="fp16").validate()
    with pytest.raises(InputError, match="device"):
        AuditConfig(**base, device="tpu").validate()
    AuditConfig(**base, device="cpu", precision="bf16").validate()
