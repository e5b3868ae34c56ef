"""The DeepCluster objective (core.learning.ssl.deep_cluster): empty clusters re-seeded on a planted
case, the class-balanced loss against a naive reference, the reassignment at every epoch (pseudo-
labels = the k-means assignment, head re-initialised with fresh optimizer state, labels changing
across epochs), a tiny run with finite losses, resume, and the batched path's fallback."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import core.learning.pretrain as solo_pretraining
from core.errors import InputError
from core.learning.batched import pretrain_replicates
from core.learning.batched.pretraining import batchable
from core.learning.models import EncoderConfig
from core.learning.pretrain import embed, pretrain
from core.learning.pretrain_config import PretrainConfig
from core.learning.ssl import make_objective, method_defaults
from core.learning.ssl.deep_cluster import DeepCluster, nearest_centroid, reseed_empty_clusters
from core.learning.ssl.views import FeatureLayout

ENCODER = {"hidden_dim": 32, "depth": 2, "embed_dim": 16}


def test_an_empty_cluster_is_reseeded_by_splitting_the_largest():
    """Rows around (1, 0) [6 rows] and (0, 1) [2 rows]; the third centroid (-5, -5) is nearest to none."""
    z = torch.tensor([[1.0, 0.01], [1.0, -0.01], [0.99, 0.02], [0.99, -0.02], [1.01, 0.03], [1.01, -0.03],
                      [0.0, 1.0], [0.01, 1.0]])
    centroids = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-5.0, -5.0]])
    assert torch.bincount(nearest_centroid(z, centroids), minlength=3).tolist() == [6, 2, 0]
    reseeded = reseed_empty_clusters(z, centroids)
    sizes = torch.bincount(nearest_centroid(z, reseeded), minlength=3).tolist()
    assert min(sizes) > 0 and sizes[1] == 2 and sizes[0] + sizes[2] == 6
    # the split: (1, 0) (1 -+ 1/1024, 0), the empty one takes (1 + 1/1024, 0); the small cluster is untouched
    assert torch.allclose(reseeded[2], torch.tensor([1 + 1 / 1024, 0.0]))
    assert torch.allclose(reseeded[0], torch.tensor([1 - 1 / 1024, 0.0]))
    assert torch.equal(reseeded[1], centroids[1])


def _objective(n_clusters=4):
    torch.manual_seed(0)
    return make_objective("deepcluster", EncoderConfig(5, 8, 2, 6), FeatureLayout.all_numeric(5),
                          n_clusters=n_clusters, pca_dim=4)


def test_reassignment_labels_rows_by_their_cluster_and_reinitialises_the_head():
    objective = _objective()
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        objective.head.weight.fill_(3.0)
    reset = objective.before_epoch(lambda: embed(objective.encoder, x))
    assert [id(p) for p in reset] == [id(p) for p in objective.head.parameters()]
    assert not torch.all(objective.head.weight == 3.0)              # re-initialised
    labels = objective.pseudo_labels(x)
    sizes = torch.bincount(labels, minlength=4)
    assert (sizes > 0).all()                                         # no empty cluster
    # class weights N / (K' N_c): the weighted mean of the loss is the class-balanced loss
    assert torch.allclose(objective.class_weight, 64 / (4 * sizes.float()))
    v, x_clean = objective.make_views(x, torch.Generator().manual_seed(2))
    assert torch.equal(x_clean, x)
    loss, _ = objective(v, x_clean)
    logits = objective.head(objective.encoder(v)).detach().double().numpy()
    naive = 0.0
    for i in range(64):
        y = int(labels[i])
        log_softmax = logits[i, y] - math.log(np.exp(logits[i]).sum())
        naive += -float(objective.class_weight[y]) * log_softmax
    assert float(loss.detach()) == pytest.approx(naive / 64, rel=1e-5)


def test_pseudo_labels_change_across_epochs_and_the_head_state_restarts(synthetic_table, monkeypatch):
    t = synthetic_table
    layout = FeatureLayout.from_arrays(t["column_of_feature"], t["is_numeric"])
    states, labels = [], []
    fresh = solo_pretraining._fresh_state

    def recording(*args, **kwargs):
        states.append(fresh(*args, **kwargs))
        return states[-1]

    probe = torch.as_tensor(t["X"][:320])
    reassign = DeepCluster.before_epoch

    def reassign_and_record(self, embed_rows):
        reset = reassign(self, embed_rows)
        labels.append(self.pseudo_labels(probe))
        return reset

    monkeypatch.setattr(solo_pretraining, "_fresh_state", recording)
    monkeypatch.setattr(DeepCluster, "before_epoch", reassign_and_record)
    config = PretrainConfig(method="deepcluster", encoder=ENCODER, epochs=3, batch_size=64, patience=0, seed=0,
                            device="cpu", method_params={"n_clusters": 8})
    result = pretrain(t["X"][:320], t["X"][320:448], layout, config)
    assert len(labels) == 3                                            # one reassignment per epoch
    assert not torch.equal(labels[0], labels[1]) and not torch.equal(labels[1], labels[2])
    state = states[0].optimizer.state
    objective = states[0].objective
    # AdamW's state of the head restarted at the last reassignment: 5 steps, the encoder's 15
    assert int(state[objective.head.weight]["step"]) == 5
    assert int(state[objective.encoder.blocks[0].linear.weight]["step"]) == 15
    losses = [h["train_loss"] for h in result.history] + [h["val_loss"] for h in result.history]
    assert np.isfinite(losses).all() and np.isfinite(result.initial_val_loss)
    assert not result.collapse["collapsed"]


def test_resume_ends_as_an_uninterrupted_run(synthetic_table, tmp_path):
    t = synthetic_table
    layout = FeatureLayout.from_arrays(t["column_of_feature"], t["is_numeric"])
    config = PretrainConfig(method="deepcluster", encoder=ENCODER, epochs=3, batch_size=64, patience=0, seed=0,
                            device="cpu", method_params={"n_clusters": 8})
    full = pretrain(t["X"][:320], t["X"][320:448], layout, config)
    stop_after = {"calls": 0}

    def stop() -> bool:
        stop_after["calls"] += 1
        return stop_after["calls"] > 7   # inside epoch 2 (5 steps an epoch)

    first = pretrain(t["X"][:320], t["X"][320:448], layout, config, should_stop=stop, checkpoint_dir=tmp_path)
    assert first.cancelled and first.epochs_completed == 1
    resumed = pretrain(t["X"][:320], t["X"][320:448], layout, config, checkpoint_dir=tmp_path, resume=True)
    assert resumed.final_loss == full.final_loss
    for key, value in full.encoder.state_dict().items():
        assert torch.equal(value, resumed.encoder.state_dict()[key]), key


def test_replicates_fall_back_to_one_after_another(synthetic_table):
    t = synthetic_table
    layout = FeatureLayout.from_arrays(t["column_of_feature"], t["is_numeric"])
    configs = [PretrainConfig(method="deepcluster", encoder=ENCODER, epochs=1, batch_size=64, patience=0, seed=s,
                              device="cpu", method_params={"n_clusters": 8}) for s in (0, 1)]
    assert not batchable(t["X"][:320], configs)
    assert batchable(t["X"][:320], [PretrainConfig(method="moco", seed=s) for s in (0, 1)])
    batched = pretrain_replicates(t["X"][:320], t["X"][320:448], layout, configs)
    for b, config in zip(batched, configs):
        s = pretrain(t["X"][:320], t["X"][320:448], layout, config)
        assert all(torch.equal(v, s.encoder.state_dict()[k]) for k, v in b.encoder.state_dict().items())


def test_too_few_rows_for_the_clusters_is_an_input_error(synthetic_table):
    t = synthetic_table
    layout = FeatureLayout.from_arrays(t["column_of_feature"], t["is_numeric"])
    config = PretrainConfig(method="deepcluster", encoder=ENCODER, epochs=1, batch_size=8, patience=0,
                            device="cpu", method_params={"n_clusters": 40})
    with pytest.raises(InputError, match="40 clusters"):
        pretrain(t["X"][:16], None, layout, config)
    assert method_defaults("deepcluster")["n_clusters"] == 32
