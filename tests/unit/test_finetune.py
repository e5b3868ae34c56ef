"""Fine-tuning strategies train exactly what they claim; baseline learns; calibration, save/load,
determinism and cancel behave."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from core.learning.calibration import binary_nll, calibration_summary, expected_calibration_error, fit_temperature
from core.errors import Cancelled, InputError
from core.learning.finetune import FinetuneConfig, TrainedClassifier, count_parameters, finetune, train_supervised
from core.learning.finetune.probe import fit_probe
from core.learning.finetune.strategies import batches, unfrozen_blocks
from core.learning.models import ClassifierHead, Encoder, EncoderConfig
from core.vocabulary import STRATEGIES

SMALL = dict(hidden_dim=16, depth=3, embed_dim=8)


@pytest.fixture(scope="module")
def data(synthetic_table):
    X, y = synthetic_table["X"], synthetic_table["y"]
    return {"X_train": X[:900], "y_train": y[:900], "X_val": X[900:1200], "y_val": y[900:1200],
            "X_test": X[1200:], "y_test": y[1200:]}


@pytest.fixture(scope="module")
def encoder(data):
    """A stand-in for a pretrained encoder: random weights and non-trivial BN statistics."""
    config = EncoderConfig(input_dim=data["X_train"].shape[1], **SMALL)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = Encoder(config)
        model.train()
        with torch.no_grad():  # give BN running statistics values that differ from the defaults
            model(torch.from_numpy(data["X_train"][:300]) * 2 + 1)
    return model.eval()


def run(encoder, data, strategy, **overrides):
    config = FinetuneConfig(strategy=strategy, **({"epochs": 3, "batch_size": 128} | overrides))
    if strategy == "supervised":
        return finetune(None, data["X_train"], data["y_train"], data["X_val"], data["y_val"], config,
                        pretraining=None, encoder_config=encoder.config)
    return finetune(encoder, data["X_train"], data["y_train"], data["X_val"], data["y_val"], config,
                    pretraining="scarf")


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    """Names of state entries (parameters and buffers) that differ from the snapshot."""
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


def encoder_names(encoder, kind):
    names = []
    for block_index, block in enumerate(encoder.blocks):
        prefix = f"blocks.{block_index}."
        if kind in ("linear", "all"):
            names += [prefix + "linear.weight"]
        if kind in ("bn-affine", "all"):
            names += [prefix + "norm.weight", prefix + "norm.bias"]
        if kind in ("bn-stats", "all"):
            names += [prefix + "norm.running_mean", prefix + "norm.running_var", prefix + "norm.num_batches_tracked"]
    return set(names)


@pytest.mark.parametrize("strategy, expected, overrides", [
    ("linear", set(), {}),
    ("bn-stats", "bn-stats", {}),
    ("bn-affine", "bn-affine", {}),
    ("full", "all", {}),
])
def test_each_strategy_changes_only_what_it_trains(encoder, data, strategy, expected, overrides):
    before = snapshot(encoder)
    model = run(encoder, data, strategy, **overrides)
    assert changed(before, encoder) == set(), "the input encoder must not be mutated"
    expected_names = encoder_names(encoder, expected) if expected else set()
    assert changed(before, model.encoder) == expected_names
    assert model.name == f"scarf+{strategy}" and model.pretraining == "scarf" and model.strategy == strategy


def test_trainable_parameter_counts(encoder, data):
    head = encoder.embed_dim + 1
    bn = sum(2 * norm.num_features for norm in encoder.batchnorm_layers())
    counts = {s: run(encoder, data, s).n_trainable_params for s in STRATEGIES}
    assert counts == {"linear": head, "bn-stats": head, "bn-affine": head + bn,
                      "gradual": head + count_parameters(encoder.blocks[-1]),  # 3 epochs, 2 per stage
                      "full": head + count_parameters(encoder)}
    assert run(encoder, data, "supervised").n_trainable_params == head + count_parameters(encoder)


def test_bn_stats_are_the_cumulative_average_over_batches(encoder, data):
    """With one batch (batch_size >= rows), the first BN's statistics are the mean and the
    unbiased variance of the first Linear's outputs over the labelled training rows."""
    model = run(encoder, data, "bn-stats", batch_size=1000)
    a = torch.from_numpy(data["X_train"]) @ encoder.blocks[0].linear.weight.detach().T
    norm = model.encoder.blocks[0].norm
    assert torch.allclose(norm.running_mean, a.mean(0), atol=1e-5)
    assert torch.allclose(norm.running_var, a.var(0, unbiased=True), rtol=1e-4)
    assert int(norm.num_batches_tracked) == 1 and model.extra["bn_stat_batches"] == 1
    # three batches of 300: the plain average of the three batch means (momentum None)
    model = run(encoder, data, "bn-stats", batch_size=300)
    assert model.extra["bn_stat_batches"] == 3 and int(model.encoder.blocks[0].norm.num_batches_tracked) == 3
    assert torch.allclose(model.encoder.blocks[0].norm.running_mean, a.mean(0), atol=1e-5)


def test_gradual_unfreezes_from_the_top_down(encoder, data):
    model = run(encoder, data, "gradual", epochs=5, stage_epochs=1)
    assert [h["unfrozen_blocks"] for h in model.history] == [[], [2], [1, 2], [0, 1, 2], [0, 1, 2]]
    assert model.n_trainable_params == encoder.embed_dim + 1 + count_parameters(encoder)
    before = snapshot(encoder)
    partial = run(encoder, data, "gradual", epochs=3, stage_epochs=1)  # head, [2], [1, 2]
    assert partial.extra["best_epoch"] == 3  # the kept weights are those of the stage that trained [1, 2]
    assert changed(before, partial.encoder) == {n for n in encoder_names(encoder, "all") if not n.startswith("blocks.0.")}
    assert unfrozen_blocks("gradual", 0, 3, 2) == 0 and unfrozen_blocks("gradual", 2, 3, 2) == 1
    assert unfrozen_blocks("gradual", 99, 3, 2) == 3


def test_gradual_stops_early_only_in_its_last_stage(encoder, data):
    model = run(encoder, data, "gradual", epochs=30, stage_epochs=3, patience=1, min_delta=10.0)
    # min_delta 10 means no epoch after the first ever "improves": stop after 1 epoch of the last stage
    assert model.extra["epochs_run"] == 10 and model.history[-1]["unfrozen_blocks"] == [0, 1, 2]
    assert model.extra["best_epoch"] == 1


def test_supervised_baseline_learns_a_nonlinear_task(encoder, data):
    model = train_supervised(data["X_train"], data["y_train"], data["X_val"], data["y_val"],
                             FinetuneConfig(epochs=40, batch_size=64, lr=3e-3), encoder.config)
    accuracy = (model.predict(data["X_test"]) == data["y_test"]).mean()
    assert model.name == "supervised" and model.pretraining is None and model.strategy == "supervised"
    assert accuracy > 0.85  # chance is ~0.5; the label is cluster parity, not linear in X
    assert model.history[0]["val_loss"] > min(h["val_loss"] for h in model.history)


def test_early_stopping_restores_the_best_epoch(encoder, data):
    model = run(encoder, data, "full", epochs=40, patience=3, lr=3e-2)
    best = min(h["val_loss"] for h in model.history)
    assert model.history[model.extra["best_epoch"] - 1]["val_loss"] == best
    assert model.extra["epochs_run"] == model.extra["best_epoch"] + 3 < 40
    y = torch.from_numpy(data["y_val"].astype(np.float32))
    logits = torch.from_numpy(model.logits(data["X_val"]).astype(np.float32))
    assert float(torch.nn.functional.binary_cross_entropy_with_logits(logits, y)) == pytest.approx(best, rel=1e-5)


def test_balanced_class_weight_sets_pos_weight(encoder, data):
    y = data["y_train"].copy()
    y[: 600] = 0  # make positives rare
    config = FinetuneConfig(strategy="linear", class_weight="balanced")
    model = finetune(encoder, data["X_train"], y, data["X_val"], data["y_val"], config, pretraining="scarf")
    assert model.extra["pos_weight"] == pytest.approx((y == 0).sum() / (y == 1).sum())
    plain = finetune(encoder, data["X_train"], y, data["X_val"], data["y_val"],
                     FinetuneConfig(strategy="linear", calibrate=False), pretraining="scarf")
    weighted = FinetuneConfig(strategy="linear", class_weight="balanced", calibrate=False)
    weighted = finetune(encoder, data["X_train"], y, data["X_val"], data["y_val"], weighted, pretraining="scarf")
    assert weighted.predict(data["X_val"]).mean() > plain.predict(data["X_val"]).mean()


def test_probe_matches_sklearn_logistic_regression():
    rng = np.random.default_rng(0)
    H = rng.normal(size=(400, 6)) * [1, 5, 0.2, 1, 3, 1] + 2
    y = (H[:, 0] + 0.3 * H[:, 1] + rng.normal(size=400) > 2.5).astype(np.int64)
    head = ClassifierHead(6).double()
    t = torch.from_numpy
    records, summary = fit_probe(head, t(H), t(y.astype(float)), t(H), t(y.astype(float)), 1.0, l2=1e-2)
    U = (H - H.mean(0)) / H.std(0)
    reference = LogisticRegression(C=1 / (1e-2 * len(H)), tol=1e-12, max_iter=10000).fit(U, y)
    ours = (t(H) @ head.linear.weight.detach().T).squeeze(1) + head.linear.bias.detach()
    assert np.allclose(ours.numpy(), reference.decision_function(U), atol=1e-5)
    assert summary["l2"] == 1e-2 and records[0]["selected"]


def test_temperature_and_ece_formulas():
    rng = np.random.default_rng(0)
    true_logit = rng.normal(scale=2.0, size=20000)
    y = (rng.random(20000) < expit(true_logit)).astype(np.int64)
    overconfident = 4.0 * true_logit
    t = fit_temperature(overconfident, y)
    grid = np.linspace(2, 6, 401)
    assert t == pytest.approx(grid[np.argmin([binary_nll(overconfident, y, g) for g in grid])], abs=0.01)
    assert t == pytest.approx(4.0, rel=0.05)
    summary = calibration_summary(overconfident, y)
    assert summary["ece_after"] < summary["ece_before"] / 3 and summary["nll_after"] < summary["nll_before"]
    # hand example with 2 bins: [0, .5) holds p .1 .2 (y 0 1), [.5, 1] holds p .9 1.0 (y 1 1)
    assert expected_calibration_error([0, 1, 1, 1], [0.1, 0.2, 0.9, 1.0], n_bins=2) == pytest.approx(
        0.5 * abs(0.5 - 0.15) + 0.5 * abs(1 - 0.95))
    assert fit_temperature(np.zeros(10), np.arange(10) % 2) == 1.0


def test_calibration_lowers_ece_of_an_overconfident_model(encoder, data):
    model = run(encoder, data, "full", epochs=10, calibrate=False)
    with torch.no_grad():  # make it deliberately over-confident: logits x 8
        model.head.linear.weight.mul_(8)
        model.head.linear.bias.mul_(8)
    summary = calibration_summary(model.logits(data["X_val"]), data["y_val"])
    assert summary["temperature"] > 1 and summary["ece_after"] < summary["ece_before"]
    before = model.predict(data["X_test"])
    model.temperature = summary["temperature"]
    assert np.array_equal(model.predict(data["X_test"]), before)  # temperature never moves the 0.5 threshold


@pytest.mark.parametrize("strategy", ["bn-stats", "full"])
def test_save_load_round_trip(encoder, data, strategy, tmp_path):
    model = run(encoder, data, strategy)
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]
    again = TrainedClassifier.load(tmp_path / "m")
    assert np.array_equal(again.predict_proba(data["X_test"]), model.predict_proba(data["X_test"]))
    assert np.array_equal(again.embed(data["X_test"]), model.embed(data["X_test"]))
    assert (again.name, again.strategy, again.n_trainable_params, again.history) == (
        model.name, model.strategy, model.n_trainable_params, model.history)
    assert json.loads((tmp_path / "m" / "model.json").read_text())["calibration"]["method"] == "temperature"


def test_outputs_have_the_contract_types(encoder, data):
    model = run(encoder, data, "linear")
    p, h = model.predict_proba(data["X_test"]), model.embed(data["X_test"])
    assert p.dtype == np.float64 and p.shape == (len(data["X_test"]),) and ((p > 0) & (p < 1)).all()
    assert h.dtype == np.float32 and h.shape == (len(data["X_test"]), encoder.embed_dim)


def test_same_seed_same_predictions_other_seed_differs(encoder, data):
    first = run(encoder, data, "full", dropout=0.3, seed=5)
    state = torch.get_rng_state()
    second = run(encoder, data, "full", dropout=0.3, seed=5)
    assert torch.equal(state, torch.get_rng_state()), "the global RNG must be left alone"
    assert np.array_equal(first.predict_proba(data["X_test"]), second.predict_proba(data["X_test"]))
    other = run(encoder, data, "full", dropout=0.3, seed=6)
    assert not np.array_equal(first.predict_proba(data["X_test"]), other.predict_proba(data["X_test"]))


def test_should_stop_cancels(encoder, data):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 4

    events = []
    with pytest.raises(Cancelled):
        finetune(encoder, data["X_train"], data["y_train"], data["X_val"], data["y_val"],
                 FinetuneConfig(strategy="full", epochs=50, batch_size=64), pretraining="scarf",
                 should_stop=should_stop, on_event=events.append)
    assert len(calls) == 5
    assert all(e["stage"] == "finetune" for e in events)


def test_progress_events_reach_fraction_one(encoder, data):
    events = []
    finetune(encoder, data["X_train"], data["y_train"], data["X_val"], data["y_val"],
             FinetuneConfig(strategy="bn-affine", epochs=2), pretraining="scarf", on_event=events.append)
    epochs = [e for e in events if "val_loss" in e]
    assert [e["epoch"] for e in epochs] == [1, 2] and events[-1]["fraction"] == 1.0


@pytest.mark.parametrize("overrides, fragment", [
    ({"strategy": "bn"}, "Unknown fine-tuning strategy 'bn'"),
    ({"epochs": 0}, "Epochs must be a whole number > 0"),
    ({"batch_size": 1}, "Batch size must be an integer >= 2"),
    ({"class_weight": "auto"}, "Unknown class weight"),
    ({"dropout": 1.0}, "Dropout must be in [0, 1)"),
    ({"encoder_dropout": -0.1}, "Encoder dropout must be in [0, 1)"),
])
def test_bad_config_is_an_input_error(overrides, fragment):
    with pytest.raises(InputError, match=fragment.replace("[", r"\[").replace(")", r"\)")):
        FinetuneConfig(**overrides)


def test_encoder_dropout_acts_only_where_the_encoder_trains(encoder, data):
    """encoder_dropout (small tables' fine-tuning) regularises the blocks that train, leaves the
    caller's encoder as it was, and cannot reach bn-affine, whose encoder stays in eval mode."""
    plain, dropped = run(encoder, data, "full"), run(encoder, data, "full", encoder_dropout=0.5)
    assert changed(snapshot(plain.encoder), dropped.encoder), "dropout in the blocks must change the training"
    assert all(isinstance(block.drop, torch.nn.Identity) for block in encoder.blocks)
    assert np.array_equal(dropped.predict_proba(data["X_test"]), dropped.predict_proba(data["X_test"]))
    bn_plain, bn_dropped = run(encoder, data, "bn-affine"), run(encoder, data, "bn-affine", encoder_dropout=0.5)
    assert np.array_equal(bn_plain.predict_proba(data["X_test"]), bn_dropped.predict_proba(data["X_test"]))


def test_one_class_training_labels_are_refused(encoder, data):
    with pytest.raises(InputError, match="only one class"):
        finetune(encoder, data["X_train"], np.zeros(900, dtype=np.int64), data["X_val"], data["y_val"],
                 FinetuneConfig(), pretraining="scarf")


def test_batches_never_leave_a_single_row():
    for n in range(2, 40):
        for size in range(2, 12):
            parts = batches(np.arange(n), size)
            assert min(len(p) for p in parts) >= 2 and max(len(p) for p in parts) <= max(size, 3)
            assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))
