"""Batched replicates (core.learning.batched) train the same models as their solo runs.

For every registered SSL objective, every fine-tuning strategy and the supervised baseline,
R = 3 replicates are trained as one batched model and each alone with the same seed: the
per-step losses (every step's event: the event throttles are set to 0) agree within 1e-4
relative over >= 20 steps, the epochs' losses too, and the final encoders and heads agree
(torch.allclose, rtol 1e-3, atol 1e-4: float32 rounding of batched against plain matrix
products, compounded over the steps; another seed differs by ~1e-1). Early stopping ends each
replicate at its solo run's epoch in a case built so that they stop at different epochs;
cancel stops between steps, at the same step as the solo run.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import core.learning.batched.finetuning as batched_finetuning
import core.learning.batched.pretraining as batched_pretraining
import core.learning.finetune.training as solo_finetuning
import core.learning.pretrain as solo_pretraining
from core.errors import Cancelled
from core.learning.batched import finetune_replicates, pretrain_replicates, train_supervised_replicates
from core.learning.batched.stacking import StackedReplicas
from core.learning.finetune import FinetuneConfig, finetune, train_supervised
from core.learning.models import Encoder, EncoderConfig
from core.learning.pretrain import pretrain
from core.learning.pretrain_config import PretrainConfig
from core.learning.ssl import method_names
from core.learning.ssl.views import FeatureLayout
from core.vocabulary import STRATEGIES, SUPERVISED

ENCODER = {"hidden_dim": 32, "depth": 2, "embed_dim": 16}
SEEDS = (0, 1, 2)
STEP_RTOL = 1e-4
# SimSiam's loss is a negative cosine that starts at 0 (-0.00 to -0.17 here), where a relative
# tolerance means nothing: 1e-5 of its range [-1, 1] is added (every other loss here is >= 0.5).
STEP_ATOL = 1e-5
# Validation runs in eval mode, where BatchNorm no longer cancels the projectors' last biases
# (BYOL, SimSiam, VICReg, Barlow): their gradient in training is zero up to rounding, which AdamW
# turns into lr-sized steps of either sign, so they differ between any two implementations, and
# the validation loss with them (measured: up to 9.5e-4 relative, SimSiam; 5.3e-4 BYOL).
VAL_RTOL = 3e-3
WEIGHTS = {"rtol": 1e-3, "atol": 1e-4}


@pytest.fixture(autouse=True)
def every_step_reported(monkeypatch):
    """One event per step in both loops, so the per-step losses can be compared."""
    for module, name in ((solo_pretraining, "EVENT_SECONDS"), (batched_pretraining, "EVENT_SECONDS"),
                         (solo_finetuning, "EVENT_EVERY_S"), (batched_finetuning, "EVENT_EVERY_S")):
        monkeypatch.setattr(module, name, 0.0)


@pytest.fixture(scope="module")
def data(synthetic_table):
    X, y = synthetic_table["X"], synthetic_table["y"]
    layout = FeatureLayout.from_arrays(synthetic_table["column_of_feature"], synthetic_table["is_numeric"])
    rng = np.random.default_rng(5)
    labelled = [np.sort(rng.choice(np.arange(400, 1000), size=200, replace=False)) for _ in SEEDS]
    return {"X": X, "y": y, "layout": layout, "pretrain": X[:400], "val": X[1000:1120], "y_val": y[1000:1120],
            "labelled": labelled}


def _pretrain_configs(method: str, **overrides) -> list[PretrainConfig]:
    base = PretrainConfig(method=method, encoder=ENCODER, epochs=4, batch_size=64, patience=0, device="cpu",
                          **overrides)
    return [replace(base, seed=seed) for seed in SEEDS]


def _step_losses(events: list[dict], replicate: int | None = None) -> list[float]:
    """The loss of every step (epoch-end events carry "val_loss" too and are left out)."""
    return [e["loss"] for e in events if "loss" in e and "val_loss" not in e
            and (replicate is None or e["replicate"] == replicate)]


def _assert_close_losses(batched: list[float], solo: list[float], at_least: int) -> None:
    assert len(batched) == len(solo) >= at_least
    np.testing.assert_allclose(batched, solo, rtol=STEP_RTOL, atol=STEP_ATOL)


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.allclose(sa[key].double(), sb[key].double(), **WEIGHTS), key


def _solo_pretraining(data, configs, **kwargs) -> tuple[list, list[list[dict]]]:
    results, events = [], []
    for config in configs:
        events.append([])
        results.append(pretrain(data["pretrain"], data["val"], data["layout"], config, on_event=events[-1].append,
                                **kwargs))
    return results, events


def _assert_pretraining_matches(batched, batched_events, solo, solo_events, at_least: int) -> None:
    for r, (b, s) in enumerate(zip(batched, solo)):
        _assert_close_losses(_step_losses(batched_events, r), _step_losses(solo_events[r]), at_least)
        assert [h["epoch"] for h in b.history] == [h["epoch"] for h in s.history]
        np.testing.assert_allclose([h["train_loss"] for h in b.history], [h["train_loss"] for h in s.history],
                                   rtol=STEP_RTOL)
        np.testing.assert_allclose([h["val_loss"] for h in b.history], [h["val_loss"] for h in s.history],
                                   rtol=VAL_RTOL)
        assert (b.best_epoch, b.epochs_completed, b.steps, b.stopped_early, b.cancelled) == \
               (s.best_epoch, s.epochs_completed, s.steps, s.stopped_early, s.cancelled)
        np.testing.assert_allclose(b.initial_val_loss, s.initial_val_loss, rtol=STEP_RTOL)
        assert b.collapse["collapsed"] == s.collapse["collapsed"]
        assert b.config == s.config
        _assert_same_weights(b.encoder, s.encoder)


@pytest.mark.parametrize("method", method_names())
def test_pretrained_replicates_equal_their_solo_runs(data, method):
    configs = _pretrain_configs(method)
    events: list[dict] = []
    batched = pretrain_replicates(data["pretrain"], data["val"], data["layout"], configs, on_event=events.append)
    solo, solo_events = _solo_pretraining(data, configs)
    _assert_pretraining_matches(batched, events, solo, solo_events, at_least=24)
    assert {e["replicate"] for e in events} == {0, 1, 2} and all(e["replicates"] == 3 for e in events)
    # the replicates differ from each other (each has its own initialisation and streams)
    assert not torch.allclose(batched[0].encoder.blocks[0].linear.weight, batched[1].encoder.blocks[0].linear.weight)


def _recording_states(monkeypatch, module) -> list:
    """The TrainingStates that `module`'s pretraining builds (its results hold encoders only)."""
    states: list = []
    fresh = module._fresh_state

    def recording(*args, **kwargs):
        states.append(fresh(*args, **kwargs))
        return states[-1]

    monkeypatch.setattr(module, "_fresh_state", recording)
    return states


def test_each_moco_replicate_keeps_its_own_queue(data, monkeypatch):
    """The queue is a buffer: stacked, each replicate enqueues its own keys, as alone."""
    configs = [replace(c, method_params={"queue_size": 96}) for c in _pretrain_configs("moco")]
    batched_states = _recording_states(monkeypatch, batched_pretraining)
    pretrain_replicates(data["pretrain"], data["val"], data["layout"], configs)
    solo_states = _recording_states(monkeypatch, solo_pretraining)
    _solo_pretraining(data, configs)
    queues = [s.objective.queue for s in batched_states]
    assert not torch.allclose(queues[0], queues[1]) and not torch.allclose(queues[1], queues[2])
    for queue, solo in zip(queues, solo_states):
        assert torch.allclose(queue, solo.objective.queue, **WEIGHTS)


def test_pretrained_replicates_stop_early_at_their_solo_epochs(data):
    """Barlow Twins, patience 1, up to 8 epochs: alone, seeds 0, 1, 2 stop early after 5, 7 and 8
    epochs (the construction is asserted)."""
    configs = [replace(c, epochs=8, patience=1) for c in _pretrain_configs("barlow")]
    events: list[dict] = []
    batched = pretrain_replicates(data["pretrain"], data["val"], data["layout"], configs, on_event=events.append)
    solo, solo_events = _solo_pretraining(data, configs)
    assert len({s.epochs_completed for s in solo}) == 3 and all(s.stopped_early for s in solo)
    _assert_pretraining_matches(batched, events, solo, solo_events, at_least=30)
    assert not any(e["epoch"] > s.epochs_completed for r, s in enumerate(solo) for e in events
                   if e["replicate"] == r and "epoch" in e)  # a stopped replicate reports nothing more


class StopAtCall:
    """should_stop that answers True from its `at`-th call on, counting its calls."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.at


def test_cancel_stops_pretraining_between_steps(data):
    configs = _pretrain_configs("scarf")
    stop = StopAtCall(9)  # after the 9th step: the 3rd of epoch 2 (6 steps an epoch)
    events: list[dict] = []
    batched = pretrain_replicates(data["pretrain"], data["val"], data["layout"], configs, on_event=events.append,
                                  should_stop=stop)
    assert stop.calls == 9
    solo, solo_events = [], []
    for config in configs:
        solo_events.append([])
        solo.append(pretrain(data["pretrain"], data["val"], data["layout"], config, should_stop=StopAtCall(9),
                             on_event=solo_events[-1].append))
    for r, (b, s) in enumerate(zip(batched, solo)):
        assert b.cancelled and s.cancelled
        assert (b.steps, b.epochs_completed, len(b.history)) == (s.steps, s.epochs_completed, len(s.history)) == (9, 1, 1)
        _assert_close_losses(_step_losses(events, r), _step_losses(solo_events[r]), at_least=9)
        _assert_same_weights(b.encoder, s.encoder)


def test_replicates_that_cannot_be_batched_run_one_after_another(data):
    """An encoder with dropout draws inside the forward pass: each replicate is pretrain itself."""
    configs = [replace(c, epochs=1, encoder={**ENCODER, "dropout": 0.1}) for c in _pretrain_configs("scarf")]
    batched = pretrain_replicates(data["pretrain"], data["val"], data["layout"], configs)
    for b, config in zip(batched, configs):
        s = pretrain(data["pretrain"], data["val"], data["layout"], config)
        assert all(torch.equal(v, s.encoder.state_dict()[k]) for k, v in b.encoder.state_dict().items())


def test_configs_may_differ_only_in_seed(data):
    configs = _pretrain_configs("scarf")
    configs[2] = replace(configs[2], lr=1e-2)
    with pytest.raises(ValueError, match=r"replicate 2.*\['lr'\]"):
        pretrain_replicates(data["pretrain"], data["val"], data["layout"], configs)


def test_stacked_replicas_share_storage_with_their_modules():
    replicas = [torch.nn.Linear(3, 2) for _ in range(3)]
    stack = StackedReplicas(replicas)
    with torch.no_grad():
        stack.module.weight[1].fill_(7.0)
        replicas[2].bias.fill_(-1.0)
    assert torch.all(replicas[1].weight == 7.0) and torch.all(stack.module.bias[2] == -1.0)
    x = torch.randn(3, 5, 3)
    out = stack(x)
    assert torch.allclose(out[0], replicas[0](x[0])) and torch.allclose(out[1], replicas[1](x[1]))


# Fine-tuning ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def encoders(data):
    """Stand-ins for three pretrained encoders: random weights, non-trivial BN statistics."""
    config = EncoderConfig(input_dim=data["X"].shape[1], **ENCODER)
    models = []
    with torch.random.fork_rng(devices=[]):
        for seed in SEEDS:
            torch.manual_seed(100 + seed)
            model = Encoder(config).train()
            with torch.no_grad():
                model(torch.from_numpy(data["pretrain"]) * 2 + 1)
            models.append(model.eval())
    return models


def _finetune_both(data, encoders, strategy: str, labelled: list[np.ndarray], **overrides):
    """(batched models, their events, solo models, solo events) for the replicates of `strategy`."""
    base = FinetuneConfig(strategy=strategy, **({"epochs": 6, "batch_size": 64, "patience": 100, "lr": 3e-3,
                                                 "stage_epochs": 1} | overrides))
    configs = [replace(base, seed=seed) for seed in SEEDS]
    X_train = [data["X"][rows] for rows in labelled]
    y_train = [data["y"][rows] for rows in labelled]
    shape = encoders[0].config
    events: list[dict] = []
    if strategy == SUPERVISED:
        batched = train_supervised_replicates(X_train, y_train, data["val"], data["y_val"], configs, shape,
                                              on_event=events.append)
    else:
        batched = finetune_replicates(encoders, X_train, y_train, data["val"], data["y_val"], configs,
                                      pretraining="scarf", on_event=events.append)
    solo, solo_events = [], []
    for r, config in enumerate(configs):
        solo_events.append([])
        if strategy == SUPERVISED:
            solo.append(train_supervised(X_train[r], y_train[r], data["val"], data["y_val"], config, shape,
                                         on_event=solo_events[-1].append))
        else:
            solo.append(finetune(encoders[r], X_train[r], y_train[r], data["val"], data["y_val"], config,
                                 pretraining="scarf", on_event=solo_events[-1].append))
    return batched, events, solo, solo_events


def _assert_finetuning_matches(batched, events, solo, solo_events, at_least: int) -> None:
    for r, (b, s) in enumerate(zip(batched, solo)):
        _assert_close_losses(_step_losses(events, r), _step_losses(solo_events[r]), at_least)
        assert (b.name, b.strategy, b.pretraining, b.n_trainable_params) == \
               (s.name, s.strategy, s.pretraining, s.n_trainable_params)
        assert len(b.history) == len(s.history) and b.config == s.config
        assert b.extra.keys() == s.extra.keys() and b.extra.get("probe") == s.extra.get("probe")
        assert {k: v for k, v in b.extra.items() if k not in ("seconds", "probe")} == \
               pytest.approx({k: v for k, v in s.extra.items() if k not in ("seconds", "probe")}, rel=STEP_RTOL)
        for key in ("train_loss", "val_loss"):
            np.testing.assert_allclose([h[key] for h in b.history], [h[key] for h in s.history], rtol=STEP_RTOL)
        _assert_same_weights(b.encoder, s.encoder)
        _assert_same_weights(b.head, s.head)
        assert b.temperature == pytest.approx(s.temperature, rel=1e-3)


@pytest.mark.parametrize("strategy", [*STRATEGIES, SUPERVISED])
def test_finetuned_replicates_equal_their_solo_runs(data, encoders, strategy):
    batched, events, solo, solo_events = _finetune_both(data, encoders, strategy, data["labelled"])
    # linear and bn-stats fit an L-BFGS probe without steps (finetune itself trains them)
    steps = 0 if strategy in ("linear", "bn-stats") else 24
    _assert_finetuning_matches(batched, events, solo, solo_events, at_least=steps)
    assert {e["replicate"] for e in events} == {0, 1, 2}
    assert not torch.allclose(batched[0].head.linear.weight, batched[1].head.linear.weight)


@pytest.mark.parametrize("strategy", ["full", "gradual"])
def test_finetuned_replicates_stop_early_at_their_solo_epochs(data, encoders, strategy):
    """lr 3e-2, patience 1, up to 12 epochs: alone, the seeds stop after 12, 11, 10 epochs (full)
    and 11, 12, 10 (gradual, whose patience restarts at every stage)."""
    batched, events, solo, solo_events = _finetune_both(data, encoders, strategy, data["labelled"], epochs=12,
                                                        patience=1, lr=3e-2)
    assert len({s.extra["epochs_run"] for s in solo}) > 1
    _assert_finetuning_matches(batched, events, solo, solo_events, at_least=4)


def test_replicates_with_other_numbers_of_labelled_rows_are_grouped_by_size(data, encoders):
    """Two replicates of 200 rows are batched; the one of 150 rows trains alone; all equal solo."""
    labelled = [data["labelled"][0], data["labelled"][1], data["labelled"][2][:150]]
    batched, events, solo, solo_events = _finetune_both(data, encoders, "bn-affine", labelled, epochs=4)
    _assert_finetuning_matches(batched, events, solo, solo_events, at_least=12)
    assert [m.extra["n_train"] for m in batched] == [200, 200, 150]


def test_cancel_stops_finetuning_between_steps(data, encoders):
    configs = [FinetuneConfig(strategy="full", epochs=6, batch_size=64, seed=seed) for seed in SEEDS]
    stop = StopAtCall(6)
    events: list[dict] = []
    with pytest.raises(Cancelled):
        finetune_replicates(encoders, [data["X"][rows] for rows in data["labelled"]],
                            [data["y"][rows] for rows in data["labelled"]], data["val"], data["y_val"], configs,
                            pretraining="scarf", on_event=events.append, should_stop=stop)
    assert stop.calls == 6  # polled before each step: 5 steps were taken, the 6th was not
    assert max(e["step"] + 4 * (e["epoch"] - 1) for e in events if "step" in e) == 5


def test_bfloat16_replicates_agree_with_their_solo_runs(data, encoders):
    """Under bf16 autocast (what "auto" picks on a GPU) the batched runs work and agree with the
    solo runs to bf16's resolution (2**-8 = 4e-3; measured up to 6e-3 relative, BYOL: the stack's
    BatchNorm computes on an fp32 copy of its input, core.learning.batched.stacking)."""
    for method in ("scarf", "byol"):
        configs = [replace(c, epochs=2, precision="bf16") for c in _pretrain_configs(method)]
        events: list[dict] = []
        batched = pretrain_replicates(data["pretrain"], data["val"], data["layout"], configs, on_event=events.append)
        solo, solo_events = _solo_pretraining(data, configs)
        for r, (b, s) in enumerate(zip(batched, solo)):
            assert b.precision == s.precision == "bf16"
            steps = _step_losses(events, r)
            assert len(steps) == len(_step_losses(solo_events[r])) == 12
            np.testing.assert_allclose(steps, _step_losses(solo_events[r]), rtol=2e-2)
    X_train = [data["X"][rows] for rows in data["labelled"]]
    y_train = [data["y"][rows] for rows in data["labelled"]]
    configs = [FinetuneConfig(strategy="full", epochs=3, batch_size=64, seed=seed) for seed in SEEDS]
    batched = finetune_replicates(encoders, X_train, y_train, data["val"], data["y_val"], configs,
                                  pretraining="scarf", precision="bf16")
    for r, config in enumerate(configs):
        solo = finetune(encoders[r], X_train[r], y_train[r], data["val"], data["y_val"], config, pretraining="scarf",
                        precision="bf16")
        np.testing.assert_allclose([h["train_loss"] for h in batched[r].history],
                                   [h["train_loss"] for h in solo.history], rtol=2e-2)
