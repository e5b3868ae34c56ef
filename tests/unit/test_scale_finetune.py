"""Issue 22: fine-tuning and the classical baselines bounded in the rows (epoch_rows,
validation_rows, the probe's rows, the settings search), and unchanged below those bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from core.learning import classical
from core.learning.classical import ClassicalModel
from core.learning.finetune import FinetuneConfig, finetune, train_supervised
from core.learning.finetune.training import EpochOrder
from core.learning.models import Encoder, EncoderConfig
from core.vocabulary import LOGISTIC_REGRESSION

SMALL = EncoderConfig(input_dim=6, hidden_dim=16, depth=2, embed_dim=8)


def _rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    return x, y


def test_epoch_order_is_a_permutation_below_the_bound_and_a_running_order_above():
    same = EpochOrder(100, 500, np.random.default_rng(3)).next_epoch()
    assert np.array_equal(same, np.random.default_rng(3).permutation(100))  # the classic epoch, unchanged
    order = EpochOrder(1_000, 300, np.random.default_rng(3))
    epochs = [order.next_epoch() for _ in range(3)]
    assert all(len(rows) == 300 for rows in epochs)
    assert len(np.unique(np.concatenate(epochs))) == 900  # the first 900 of one shuffled pass


def test_an_epoch_trains_at_most_epoch_rows_and_stopping_reads_at_most_validation_rows():
    x, y = _rows(3_000)
    events: list[dict] = []
    config = FinetuneConfig(strategy="supervised", epochs=2, batch_size=100, epoch_rows=500, validation_rows=200,
                            patience=5)
    model = train_supervised(x[:2_000], y[:2_000], x[2_000:], y[2_000:], config, SMALL, on_event=events.append)
    steps = {e["total_steps"] for e in events if "total_steps" in e}
    assert steps == {5}  # 500 rows of batches of 100, not 2,000
    assert model.extra["n_val_stopping"] == 200 and model.extra["n_val"] == 1_000
    unbounded = train_supervised(x[:2_000], y[:2_000], x[2_000:], y[2_000:],
                                 FinetuneConfig(strategy="supervised", epochs=2, batch_size=100), SMALL,
                                 on_event=events.append)
    assert unbounded.extra["n_val_stopping"] == 1_000


def test_the_probe_of_linear_is_fitted_on_at_most_epoch_rows_rows():
    x, y = _rows(2_400, seed=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = Encoder(SMALL).eval()
    bounded = finetune(encoder, x[:2_000], y[:2_000], x[2_000:], y[2_000:],
                       FinetuneConfig(strategy="linear", epoch_rows=700), pretraining="scarf")
    full = finetune(encoder, x[:2_000], y[:2_000], x[2_000:], y[2_000:], FinetuneConfig(strategy="linear"),
                    pretraining="scarf")
    assert bounded.extra["probe"]["n_train"] == 700 and full.extra["probe"]["n_train"] == 2_000
    agree = np.mean((bounded.predict_proba(x[2_000:]) > 0.5) == (full.predict_proba(x[2_000:]) > 0.5))
    assert agree > 0.95  # a convex head on 700 rows decides almost as on 2,000


def test_classical_search_on_a_subsample_then_the_chosen_setting_refitted_on_every_row(monkeypatch):
    monkeypatch.setattr(classical, "SEARCH_ROWS", 500)
    x, y = _rows(2_000, seed=2)
    model = ClassicalModel(LOGISTIC_REGRESSION).fit(x[:1_500], y[:1_500], x[1_500:], y[1_500:])
    searched, refit = model.history[:-1], model.history[-1]
    assert len(searched) == len(classical.C_GRID) and all(r["n_train"] == 500 for r in searched)
    assert refit["refit"] and refit["n_train"] == 1_500 and refit["C"] == model.setting_["C"]
    reference = LogisticRegression(C=model.setting_["C"], max_iter=5000).fit(x[:1_500], y[:1_500])
    assert np.allclose(model.coef_, reference.coef_.ravel(), atol=1e-4)


@pytest.mark.parametrize("n", [400])
def test_classical_below_the_bound_searches_every_row_and_never_refits(n):
    x, y = _rows(n + 200, seed=4)
    model = ClassicalModel(LOGISTIC_REGRESSION).fit(x[:n], y[:n], x[n:], y[n:])
    assert len(model.history) == len(classical.C_GRID)
    assert all(r["n_train"] == n and "refit" not in r for r in model.history)
