"""Differentially private fine-tuning (core.learning.private): the accountant keeps its promise,
and per-sample clipping bounds what any one row, however extreme, can do to a training step."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core.learning.finetune.classifier import TrainedClassifier
from core.learning.finetune.config import FinetuneConfig
from core.learning.models import ClassifierHead, Encoder, EncoderConfig
from core.learning.private import GRAD_SAMPLE_MODE, FrozenNormNet, balanced_loss, freeze_for, private_finetune

SHAPE = EncoderConfig(input_dim=4, hidden_dim=8, depth=2, embed_dim=4)


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    return X, (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)


@pytest.mark.parametrize("target", [0.5, 4.0])
def test_the_accountants_epsilon_is_at_most_the_target(target, tmp_path):
    X, y = synthetic(80, 0)
    X_val, y_val = synthetic(30, 1)
    config = FinetuneConfig(strategy="supervised", epochs=3, batch_size=16, seed=3)
    model = private_finetune(None, X, y, X_val, y_val, config, name="supervised+dp", base="supervised",
                             pretraining=None, target_epsilon=target, encoder_config=SHAPE)
    privacy = model.privacy
    assert 0.5 * target < privacy["epsilon"] <= target  # spent, from the accountant, close to the target
    assert privacy["delta"] == pytest.approx(1 / 80) and privacy["target_epsilon"] == target
    assert privacy["noise_multiplier"] > 0 and privacy["sample_rate"] == pytest.approx(16 / 80)
    assert "the pretraining rows" in " ".join(privacy["not_covered"])
    assert len(model.history) == 3 and model.base == "supervised"  # fixed epochs: no early stopping
    # A TrainedClassifier folder: it loads (the Explain page's path) and predicts the same.
    loaded = TrainedClassifier.load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.predict_proba(X_val), model.predict_proba(X_val), rtol=1e-6)
    assert loaded.extra["privacy"]["epsilon"] == privacy["epsilon"]


def test_a_pretrained_encoder_is_copied_and_only_its_linear_layers_train():
    X, y = synthetic(60, 2)
    torch.manual_seed(0)
    encoder = Encoder(SHAPE)
    before = copy.deepcopy(encoder.state_dict())
    config = FinetuneConfig(strategy="full", epochs=2, batch_size=20, seed=1)
    model = private_finetune(encoder, X, y, X, y, config, name="scarf+full+dp-eps3", base="scarf+full",
                             pretraining="scarf", target_epsilon=3.0)
    for key, value in encoder.state_dict().items():  # the caller's encoder is untouched
        assert torch.equal(value, before[key])
    trained = model.encoder.state_dict()
    for key in before:  # BatchNorm is frozen (statistics and scale/shift); the Linear weights moved
        changed = not torch.equal(trained[key], before[key])
        assert changed == key.endswith("linear.weight"), key


def private_gradient(rows_X: np.ndarray, rows_y: np.ndarray, net: FrozenNormNet, *, max_grad_norm: float,
                     noise_multiplier: float, batch_size: int) -> torch.Tensor:
    """The private gradient of one step on exactly these rows (no Poisson draw): every row's
    gradient clipped, summed, noised from a fixed seed, divided by batch_size; flattened."""
    from opacus import PrivacyEngine

    net = copy.deepcopy(net)
    freeze_for(net, "supervised")
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    data = torch.utils.data.TensorDataset(torch.from_numpy(rows_X), torch.from_numpy(rows_y.astype(np.float32)))
    loader = torch.utils.data.DataLoader(data, batch_size=len(rows_X))
    net.train()
    module, optimizer, criterion, loader = PrivacyEngine(accountant="rdp").make_private(
        module=net, optimizer=optimizer, data_loader=loader, criterion=balanced_loss(np.array([0, 1]), None),
        noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm, poisson_sampling=False,
        grad_sample_mode=GRAD_SAMPLE_MODE, noise_generator=torch.Generator().manual_seed(7))
    optimizer.expected_batch_size = batch_size  # the same divisor with and without the outlier
    x, y = next(iter(loader))
    criterion(module(x), y).backward()
    optimizer.pre_step()  # clip, sum, add the noise, scale: the gradient the step would take
    return torch.cat([p.grad.flatten() for p in optimizer.params])


def test_per_sample_clipping_bounds_a_planted_outliers_contribution():
    X, y = synthetic(40, 4)
    outlier_X = np.full((1, 4), 1e3, dtype=np.float32)  # a huge feature value ...
    outlier_y = np.array([0])                           # ... with the label the features argue against
    torch.manual_seed(0)
    net = FrozenNormNet(Encoder(SHAPE), ClassifierHead(SHAPE.embed_dim), dropout=0.0)
    C = 1.0
    # Unclipped, the outlier's own gradient is enormous: the plant is real.
    raw = copy.deepcopy(net).eval()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(raw(torch.from_numpy(outlier_X)),
                                                                torch.tensor([0.0]))
    loss.backward()
    assert torch.cat([p.grad.flatten() for p in raw.parameters() if p.grad is not None]).norm() > 100 * C
    # Clipped, alone it moves the summed gradient by at most C ...
    alone = private_gradient(outlier_X, outlier_y, net, max_grad_norm=C, noise_multiplier=0.0, batch_size=1)
    assert float(alone.norm()) <= C * (1 + 1e-5)
    # ... and among 40 ordinary rows, with the same noise drawn, the private gradients with and without
    # it differ by at most C / batch size: BatchNorm in eval mode lets no row change another's gradient.
    for sigma in (0.0, 1.0):
        without = private_gradient(X, y, net, max_grad_norm=C, noise_multiplier=sigma, batch_size=40)
        with_it = private_gradient(np.vstack([X, outlier_X]), np.concatenate([y, outlier_y]), net,
                                   max_grad_norm=C, noise_multiplier=sigma, batch_size=40)
        assert float((with_it - without).norm()) <= C / 40 * (1 + 1e-4)
        assert float((with_it - without).norm()) > 0.5 * C / 40  # the outlier is clipped, not dropped
