"""Federated SSL pretraining (issue 19, core.learning.federated) in Flower's simulation engine:
one site replays central pretraining, each client holds only its own site's rows, bad
--federated-by stops before training with exit 2, and a tiny audit carries the federated models
with `privacy.federated` and their comparison with the central ones.

Two Flower simulations in all (each starts Ray, seconds): the one-site run and the audit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from core.cli import main as cli
from core.data.study import Study
from core.learning.federated import pretrain_federated, rows_digest
from core.learning.federated_sites import MISSING_SITE, check_sites, site_labels
from core.learning.finetune.classifier import TrainedClassifier
from core.learning.pretrain import PretrainConfig, pretrain
from core.learning.ssl.views import FeatureLayout
from core.errors import InputError
from core.results.federated_sites import site_accuracy
from core.results.folder import load_results
from core.run.config import AuditConfig
from core.run.pipeline import run_audit

TINY = dict(data="german", target="credit", sensitive=["sex"], positive="good", epochs=2, finetune_epochs=1,
            n_boot=40, strategies=["linear"], baselines=[], umap=False, workers=1, replicates=2,
            encoder={"hidden_dim": 16, "depth": 1, "embed_dim": 8}, federated_by="housing", federated_rounds=2)


@pytest.fixture(scope="module")
def federated_audit(tmp_path_factory):
    out = tmp_path_factory.mktemp("federated")
    return run_audit(AuditConfig(**TINY), out), out


def test_one_site_replays_central_pretraining():
    """One site, one round of E local epochs is central pretraining of E epochs: the same
    initialisation, views, schedule and steps; FedAvg of one site is that site's weights. So the
    encoders agree to float rounding (tolerance 1e-6; measured 0.0). BatchNorm's step counter
    (num_batches_tracked) is not exchanged, so only floating tensors are compared."""
    X = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    layout = FeatureLayout(torch.arange(6), torch.ones(6, dtype=torch.bool))
    config = PretrainConfig(epochs=2, batch_size=64, encoder={"hidden_dim": 16, "depth": 1, "embed_dim": 8},
                            seed=3, device="cpu")
    central = pretrain(X, None, layout, config).encoder.state_dict()
    federated = pretrain_federated(X, np.zeros(300), None, layout, config, rounds=1, local_epochs=2, by="one")
    floats = [name for name, value in central.items() if value.is_floating_point()]
    assert len(floats) == 5  # the block's weight, BN affine, BN running mean and variance
    for name in floats:
        assert torch.allclose(central[name], federated.encoder.state_dict()[name], atol=1e-6), name
    assert federated.federated["rows_per_site"] == {"0.0": 300} and len(federated.history) == 1


def test_each_client_held_only_its_own_sites_rows(federated_audit):
    report, out = federated_audit
    study = Study.load(out)
    pretrain_rows = study.split.pretrain
    sites = site_labels(study.data.frame["housing"])[pretrain_rows]
    federated = next(m for m in report["models"] if m["name"] == "scarf-fed+linear")["privacy"]["federated"]
    assert federated["rows_per_site"] == {site: int((sites == site).sum()) for site in ("for free", "own", "rent")}
    # Each client digested the row ids it loaded: exactly its site's pretraining rows, never the pool.
    for site, digest in federated["rows_digest_per_site"].items():
        assert digest == rows_digest(pretrain_rows[sites == site]), site
    assert rows_digest(pretrain_rows) not in federated["rows_digest_per_site"].values()


def test_a_tiny_federated_audit_compares_each_federated_model_with_its_central_base(federated_audit):
    report, out = federated_audit
    models = {m["name"]: m for m in report["models"]}
    federated = models["scarf-fed+linear"]
    assert federated["base"] == "scarf+linear" and federated["pretraining"] == "scarf-fed"
    settings = federated["privacy"]["federated"]
    assert {k: settings[k] for k in ("by", "sites", "rounds", "strategy", "local_epochs")} == {
        "by": "housing", "sites": 3, "rounds": 2, "strategy": "fedavg", "local_epochs": 1}
    assert [entry["round"] for entry in settings["round_losses"]] == [1, 2]
    assert set(settings["round_losses"][0]["site_losses"]) == {"for free", "own", "rent"}
    assert len(federated["replicates"]) == 2
    compared = federated["compared_with_base"]["sex"]["equalized_odds_difference"]
    assert compared["family"] == "variant_vs_base" and "p_adjusted" in compared
    assert "compared_with_base" not in models["scarf+linear"]
    # Saved as a TrainedClassifier: the Explain page opens it like any fine-tuned model.
    loaded = TrainedClassifier.load(out / "models" / "scarf-fed+linear")
    assert loaded.name == "scarf-fed+linear" and loaded.extra["privacy"]["federated"]["by"] == "housing"
    html = (out / "report.html").read_text(encoding="utf-8")  # the report's section, from the same verdicts
    assert 'id="federated"' in html and "Pretrained (SCARF, federated), output layer only (3 sites by housing)" in html


def test_per_site_accuracy_of_each_federated_model_and_its_base(federated_audit):
    report, out = federated_audit
    table = site_accuracy(load_results(out))
    assert set(table["site"]) == {"for free", "own", "rent"} and set(table["model"]) == {"scarf-fed+linear"}
    row = table[table["site"] == "own"].iloc[0]
    results = load_results(out)
    study = Study.load(out)
    own = site_labels(study.data.frame["housing"])[results.predictions["row_id"].to_numpy()] == "own"
    predictions = results.predictions[own]
    expected = (predictions["pred__scarf-fed+linear"] == predictions["y_true"]).mean()
    assert row["n_test"] == own.sum()
    # The mean over the two replicates; replicate 0 alone is within the same interval's reach.
    assert abs(row["accuracy"] - expected) < 0.15 and row["family"] == "federated_sites"
    assert row["difference"] == pytest.approx(row["accuracy"] - row["base_accuracy"])


def _table_with(tmp_path, site_values) -> str:
    rng = np.random.default_rng(1)
    n = len(site_values)
    frame = pd.DataFrame({"x": rng.normal(size=n), "group": rng.choice(["a", "b"], n), "site": site_values,
                          "outcome": rng.choice(["yes", "no"], n)})
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("sites, flags, fragment", [
    (["A"] * 400, ["--federated-by", "nosuch"], "is not a column of the table"),
    (["A"] * 400, ["--federated-by", "site"], "has 1 site among the pretraining rows"),
    ([f"s{i}" for i in range(25)] * 16, ["--federated-by", "site"], "has 25 distinct values"),
    (["A", "B"] * 200, ["--federated-by", "site", "--federated-rounds", "0"], "rounds must be 1 or more"),
    (["A", "B"] * 200, ["--federated-by", "site", "--federated-strategy", "fedsgd"], "Unknown federated strategy"),
])
def test_bad_federated_by_exits_2_before_training(tmp_path, capsys, sites, flags, fragment):
    table = _table_with(tmp_path, sites)
    code = cli.main(["audit", "--data", table, "--target", "outcome", "--sensitive", "group", *flags,
                     "--workspace", str(tmp_path / "ws"), "--out", str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert fragment in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_sites_with_missing_values_and_too_few_rows():
    labels = site_labels(pd.Series(["a", None, "b", np.nan]))
    assert list(labels) == ["a", MISSING_SITE, "b", MISSING_SITE]
    assert check_sites(np.array(["a"] * 60 + ["b"] * 50), "site") == {"a": 60, "b": 50}
    with pytest.raises(InputError, match="site 'b' \\(49\\) has fewer than 50"):
        check_sites(np.array(["a"] * 60 + ["b"] * 49), "site")
