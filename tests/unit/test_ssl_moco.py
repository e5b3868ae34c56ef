"""The MoCo v2 objective (core.learning.ssl.momentum_contrast): its loss against a naive float64
reference, the FIFO queue (training steps enqueue the batch's keys, validation leaves it alone),
the momentum update of the key network, and a tiny run with finite losses that does not collapse.
The queue under DDP is tested in test_ddp.py, under batched replicates in
test_batched_replicates.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.learning.models import EncoderConfig
from core.learning.pretrain import pretrain
from core.learning.pretrain_config import PretrainConfig
from core.learning.ssl import make_objective, method_defaults
from core.learning.ssl.momentum_contrast import enqueue, moco_loss
from core.learning.ssl.views import FeatureLayout

TOL = dict(rel=1e-5, abs=1e-6)


def _unit(v):
    return v / np.linalg.norm(v)


def _naive_moco(q, k, queue, tau) -> float:
    q, k, queue = q.double().numpy(), k.double().numpy(), queue.double().numpy()
    total = 0.0
    for i in range(len(q)):
        qi = _unit(q[i])
        positive = math.exp(np.dot(qi, _unit(k[i])) / tau)
        negatives = sum(math.exp(np.dot(qi, _unit(queue[j])) / tau) for j in range(len(queue)))
        total += -math.log(positive / (positive + negatives))
    return total / len(q)


@pytest.mark.parametrize("tau", [0.2, 1.0])
def test_moco_loss_against_a_naive_reference(tau):
    g = torch.Generator().manual_seed(0)
    q, k, queue = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g), torch.randn(7, 4, generator=g)
    assert float(moco_loss(q, k, queue, tau)) == pytest.approx(_naive_moco(q, k, queue, tau), **TOL)


def test_enqueue_pushes_the_newest_keys_in_front_and_drops_the_oldest():
    queue = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    assert enqueue(queue, torch.tensor([[8.0], [9.0]])).flatten().tolist() == [8.0, 9.0, 1.0, 2.0]
    assert enqueue(queue, torch.arange(10.0, 16.0)[:, None]).flatten().tolist() == [10.0, 11.0, 12.0, 13.0]


def _objective(**params):
    torch.manual_seed(0)
    return make_objective("moco", EncoderConfig(5, 8, 2, 4), FeatureLayout.all_numeric(5), proj_hidden=8,
                          proj_dim=3, **params)


def test_training_steps_enqueue_keys_and_validation_leaves_the_queue_alone():
    objective = _objective(queue_size=6)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    v1, v2 = objective.make_views(x, torch.Generator().manual_seed(2))
    before = objective.queue.clone()
    objective.eval()
    loss, _ = objective(v1, v2)
    assert torch.equal(objective.queue, before) and torch.isfinite(loss)
    objective.train()
    with torch.no_grad():
        keys = F.normalize(objective.key_projector(objective.key_encoder(v2)), dim=1)
        q = objective.projector(objective.encoder(v1))
    loss, _ = objective(v1, v2)
    assert float(loss.detach()) == pytest.approx(_naive_moco(q, keys, before, 0.2), **TOL)  # negatives: the old queue
    assert torch.allclose(objective.queue, torch.cat([keys, before[:2]]))
    assert "queue" in objective.state_dict()  # training state: checkpoints and resume keep it


def test_momentum_update_of_the_key_network():
    objective = _objective(momentum=0.9)
    with torch.no_grad():
        for p in objective.encoder.parameters():
            p.add_(1.0)
    key_before = [p.clone() for p in objective.key_encoder.parameters()]
    objective.after_step(0, 10)
    for query, key, old in zip(objective.encoder.parameters(), objective.key_encoder.parameters(), key_before):
        assert torch.allclose(key, 0.9 * old + 0.1 * query)
        assert not key.requires_grad
    d = method_defaults("moco")
    assert (d["temperature"], d["momentum"], d["queue_size"]) == (0.2, 0.99, 512)


def test_tiny_run_has_finite_losses_and_does_not_collapse(synthetic_table):
    t = synthetic_table
    layout = FeatureLayout.from_arrays(t["column_of_feature"], t["is_numeric"])
    config = PretrainConfig(method="moco", encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16}, epochs=3,
                            batch_size=64, patience=0, seed=0, device="cpu", method_params={"queue_size": 128})
    result = pretrain(t["X"][:320], t["X"][320:448], layout, config)
    losses = [h["train_loss"] for h in result.history] + [h["val_loss"] for h in result.history]
    assert len(result.history) == 3 and np.isfinite(losses).all()
    assert not result.collapse["collapsed"]
