"""Each objective learns the synthetic table's structure: its validation loss falls, and a
linear probe on its frozen embeddings beats one on a random-initialised encoder.

Table (tests/conftest.py): 6 latent clusters on a circle drive numerics and a categorical
column; the label is cluster % 2, not linear in the raw features. Probe: logistic
regression on 200 labelled rows, accuracy on 500 held-out rows. Measured on this machine
(8 epochs): random encoder ~0.72, every objective 0.90-0.96.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from core.cli.pretrain import METHOD_NAMES, add_arguments
from core.errors import InputError
from core.learning.models import Encoder, EncoderConfig
from core.learning.ssl import METHODS, make_objective, method_defaults, method_names
from core.learning.ssl.collapse import COLLAPSE_THRESHOLD, collapse_report
from core.learning.ssl.views import FeatureLayout
from core.learning.pretrain import embed, pretrain
from core.learning.pretrain_config import PretrainConfig

ENCODER = {"hidden_dim": 64, "depth": 2, "embed_dim": 32}
MARGIN = 0.05  # probe accuracy gain over the random encoder that counts as "learned"


@pytest.fixture(scope="module")
def table(synthetic_table):
    t = synthetic_table
    layout = FeatureLayout.from_arrays(t["column_of_feature"], t["is_numeric"])
    X, y = t["X"], t["y"]
    return {"layout": layout, "train": X[:1000], "val": X[1000:1250],
            "probe_X": X[:200], "probe_y": y[:200], "test_X": X[1000:], "test_y": y[1000:]}


def _probe(encoder: torch.nn.Module, table) -> float:
    clf = LogisticRegression(max_iter=2000)
    clf.fit(embed(encoder, table["probe_X"]).numpy(), table["probe_y"])
    return clf.score(embed(encoder, table["test_X"]).numpy(), table["test_y"])


@pytest.fixture(scope="module")
def random_probe(table) -> float:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        encoder = Encoder(EncoderConfig(table["train"].shape[1], **ENCODER))
    return _probe(encoder, table)


@pytest.mark.parametrize("method", method_names())
def test_objective_learns_the_structure(method, table, random_probe):
    config = PretrainConfig(method=method, encoder=ENCODER, epochs=8, batch_size=128, lr=3e-3,
                            patience=0, seed=0)
    result = pretrain(table["train"], table["val"], table["layout"], config)
    assert result.best_val_loss < result.initial_val_loss
    accuracy = _probe(result.encoder, table)
    assert accuracy > random_probe + MARGIN, (method, accuracy, random_probe)
    assert not result.collapse["collapsed"]


def test_registry_holds_twelve_methods_with_published_defaults():
    assert method_names() == ["scarf", "vime", "dae", "simclr", "byol", "simsiam", "vicreg",
                              "barlow", "swav", "moco", "vae", "deepcluster"]
    d = {name: method_defaults(name) for name in METHODS}
    assert (d["scarf"]["corruption_rate"], d["scarf"]["temperature"]) == (0.6, 1.0)
    assert (d["vime"]["p_m"], d["vime"]["alpha"]) == (0.3, 2.0)
    assert d["dae"]["swap_rate"] == 0.15
    assert d["simclr"]["temperature"] == 0.5
    assert d["byol"]["tau_base"] == 0.996
    assert (d["vicreg"]["sim_weight"], d["vicreg"]["var_weight"], d["vicreg"]["cov_weight"]) == (25, 25, 1)
    assert d["barlow"]["lambd"] == 5e-3
    assert (d["swav"]["sinkhorn_iters"], d["swav"]["epsilon"], d["swav"]["temperature"]) == (3, 0.05, 0.1)
    assert (d["moco"]["temperature"], d["moco"]["momentum"], d["moco"]["queue_size"]) == (0.2, 0.99, 512)
    assert d["vae"]["beta"] == 1.0
    assert d["deepcluster"]["n_clusters"] == 32


def test_unknown_method_or_parameter_is_an_input_error():
    layout = FeatureLayout.all_numeric(3)
    with pytest.raises(InputError, match="unknown pretraining method 'simclear'"):
        make_objective("simclear", EncoderConfig(3), layout)
    with pytest.raises(InputError, match="temprature"):
        make_objective("scarf", EncoderConfig(3), layout, temprature=0.1)
    with pytest.raises(InputError, match="4 features"):
        make_objective("scarf", EncoderConfig(3), FeatureLayout.all_numeric(4))


def test_every_objective_owns_the_encoder_and_its_heads():
    layout = FeatureLayout.all_numeric(5)
    for name in method_names():
        objective = make_objective(name, EncoderConfig(5, 8, 2, 4), layout)
        trainable = {id(p) for p in objective.trainable_parameters()}
        assert {id(p) for p in objective.encoder.parameters()} <= trainable
        assert len(trainable) > len(list(objective.encoder.parameters()))  # plus heads


def test_collapse_is_detected_on_a_constant_encoder_and_not_on_a_random_one(table):
    X = torch.as_tensor(table["test_X"])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        encoder = Encoder(EncoderConfig(X.shape[1], **ENCODER))
    healthy = collapse_report(embed(encoder, X))
    assert not healthy["collapsed"] and healthy["relative_std"] > 5 * COLLAPSE_THRESHOLD
    with torch.no_grad():  # last block: BN scale 0, shift 1 -> every row maps to the same vector
        encoder.blocks[-1].norm.weight.zero_()
        encoder.blocks[-1].norm.bias.fill_(1.0)
    collapsed = collapse_report(embed(encoder, X))
    assert collapsed["collapsed"] and collapsed["embedding_std"] < 1e-6
    assert collapse_report(torch.zeros(10, 4))["collapsed"]  # dead ReLUs
    nearly = torch.ones(50, 8) + 1e-4 * torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    assert collapse_report(nearly)["collapsed"]


def test_pretraining_reports_collapse_loudly(table):
    """The check runs on the validation rows; identical rows give identical embeddings,
    which is what a collapsed encoder produces, so the reporting path must fire."""
    events = []
    config = PretrainConfig(method="scarf", encoder=ENCODER, epochs=1, batch_size=128,
                            patience=0, seed=0)
    constant_rows = np.repeat(table["val"][:1], 50, axis=0)
    with pytest.warns(RuntimeWarning, match="collapsed"):
        result = pretrain(table["train"][:300], constant_rows, table["layout"], config,
                          on_event=events.append)
    assert result.collapse["collapsed"]
    assert any(e["stage"] == "warning" and "collapsed" in e["message"] for e in events)


def test_the_commands_name_every_method_in_their_help():
    """`equiscope pretrain/audit --method`'s help is a literal (the CLI's parser must not load torch)."""
    assert METHOD_NAMES.split(", ") == method_names()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert METHOD_NAMES in next(a for a in parser._actions if a.dest == "method").help
