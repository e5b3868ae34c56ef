"""Training-side debiasing (core.learning.debias) on small planted data where the answer is known:
the penalty narrows a planted selection-rate gap as lambda grows, the adversary lowers what the
leakage probe reads of a planted attribute, pruning keeps its zeros through fine-tuning, and the
wider, shallower encoder has the asked shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.audit.representation import attribute_leakage
from core.learning.debias.adversary import AdversarialRemoval, reverse_gradient
from core.learning.debias.penalty import FairnessPenalty, group_gap_penalty
from core.learning.debias.pruning import KeepPruned, prune_encoder, realised_sparsity
from core.learning.debias.shape import wide_shallow
from core.learning.finetune import FinetuneConfig, TrainedClassifier, finetune
from core.learning.models import Encoder, EncoderConfig

# Small and quick: an untrained encoder fine-tuned in full, the encoder at the head's pace.
FAST = dict(strategy="full", epochs=12, batch_size=100, lr=1e-2, encoder_lr_scale=1.0, patience=12, seed=0)


def planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose first column is the group (plus a little noise) and whose label depends on
    the group as much as on the second column: an unconstrained model selects group 1 far more."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 6))
    X[:, 0] = groups + 0.3 * rng.normal(size=n)
    y = (X[:, 1] + 1.2 * groups + 0.5 * rng.normal(size=n) > 0.6).astype(np.int64)
    return X.astype(np.float32), y, groups


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = Encoder(EncoderConfig(input_dim=6, hidden_dim=16, depth=2, embed_dim=8))
    return encoder, planted(500, 0), planted(300, 1), planted(2000, 2)


def fit(data, hook=None, encoder=None):
    pretrained, (X, y, _), (X_val, y_val, _), _ = data
    return finetune(encoder or pretrained, X, y, X_val, y_val, FinetuneConfig(**FAST), pretraining="random",
                    hook=hook)


def test_the_penalty_is_the_squared_distance_of_each_group_mean_from_the_mean():
    p = torch.tensor([0.9, 0.7, 0.2, 0.4])
    groups, labels = torch.tensor([0, 0, 1, 1]), torch.tensor([1, 0, 1, 0])
    # Selection: means 0.8 and 0.3 around 0.55 -> 2 * 0.25^2.
    assert float(group_gap_penalty(p, labels, groups, "demographic_parity_difference")) == pytest.approx(0.125)
    # Within y=1: 0.9 vs 0.2 around 0.55; within y=0: 0.7 vs 0.4 around 0.55.
    expected = 2 * 0.35 ** 2 + 2 * 0.15 ** 2
    assert float(group_gap_penalty(p, labels, groups, "equalized_odds_difference")) == pytest.approx(expected)
    assert float(group_gap_penalty(p, labels, groups, "equal_opportunity_difference")) == pytest.approx(2 * 0.35 ** 2)
    assert float(group_gap_penalty(torch.full((4,), 0.6), labels, groups, "equalized_odds_difference")) == 0


def test_the_penalty_narrows_a_planted_selection_rate_gap_as_lambda_grows(data):
    _, (_, y, groups), _, (X_test, _, groups_test) = data

    def gap(model) -> float:
        decisions = model.predict(X_test)
        return abs(decisions[groups_test == 1].mean() - decisions[groups_test == 0].mean())

    gaps = [gap(fit(data, FairnessPenalty(groups, y, weight=weight, gap="demographic_parity_difference")))
            for weight in (0.0, 2.0, 8.0)]
    assert gaps[0] > 0.3  # planted: the unconstrained model selects group 1 far more often
    assert gaps[1] < gaps[0] - 0.03 and gaps[2] < gaps[1] - 0.03, gaps  # monotone, each step a clear one
    assert gaps[2] < 0.6 * gaps[0], gaps


def test_the_adversary_lowers_what_the_leakage_probe_reads(data):
    _, (_, _, groups), _, (X_test, _, groups_test) = data
    plain = fit(data)
    debiased = fit(data, AdversarialRemoval(groups, alpha=3.0))
    read = [attribute_leakage(model.embed(X_test), groups_test)["balanced_accuracy"] for model in (plain, debiased)]
    assert read[0] > 0.7  # planted: the group is nearly a column of the rows
    assert read[1] < read[0] - 0.1, read
    summary = debiased.extra["debias"]["adversary"]
    assert summary["alpha"] == 3.0 and summary["final_cross_entropy"] > 0.9 * summary["chance_cross_entropy"]
    assert not hasattr(debiased, "adversary") and "debias" not in plain.extra


def test_reverse_gradient_flips_and_scales_the_gradient_only():
    x = torch.ones(3, requires_grad=True)
    out = reverse_gradient(x, 2.5)
    out.sum().backward()
    assert torch.equal(out.detach(), torch.ones(3)) and torch.equal(x.grad, torch.full((3,), -2.5))


def test_pruning_reaches_the_sparsity_and_fine_tuning_keeps_the_zeros(data, tmp_path):
    pretrained = data[0]
    encoder = prune_encoder(pretrained, 0.8)
    assert realised_sparsity(encoder) == pytest.approx(0.8, abs=0.01)
    assert realised_sparsity(pretrained) == 0  # the pretrained encoder is left as it was
    zeros = [block.linear.weight == 0 for block in encoder.blocks]
    model = fit(data, KeepPruned(0.8), encoder=encoder)
    assert model.extra["debias"]["pruning"]["realised_sparsity"] == pytest.approx(realised_sparsity(encoder))
    loaded = TrainedClassifier.load(model.save(tmp_path / "pruned"))  # plain weights with zeros, no mask
    for block, zero in zip(loaded.encoder.blocks, zeros):
        assert torch.all(block.linear.weight[zero] == 0)
        assert not hasattr(block.linear, "weight_mask")
    # The weights left did train (the mask keeps zeros, it does not freeze the rest).
    assert not torch.equal(loaded.encoder.blocks[0].linear.weight, encoder.blocks[0].linear.weight)


def test_the_wide_shallow_encoder_is_twice_as_wide_and_half_as_deep():
    shape = wide_shallow(EncoderConfig(input_dim=10, hidden_dim=256, depth=3, embed_dim=128))
    assert (shape.hidden_dim, shape.depth, shape.embed_dim, shape.input_dim) == (512, 2, 128, 10)
    assert wide_shallow(EncoderConfig(input_dim=10, hidden_dim=16, depth=1)).depth == 1  # at least one block
    assert wide_shallow(EncoderConfig(input_dim=10, depth=4)).depth == 2


def test_a_hook_needs_the_mini_batch_loop(data):
    pretrained, (X, y, groups), (X_val, y_val, _), _ = data
    with pytest.raises(ValueError, match="mini-batch"):
        finetune(pretrained, X, y, X_val, y_val, FinetuneConfig(strategy="linear"), pretraining="random",
                 hook=FairnessPenalty(groups, y, weight=1.0, gap="equalized_odds_difference"))
