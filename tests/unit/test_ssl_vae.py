"""The VAE objective (core.learning.ssl.variational): its KL term against the closed form on a
hand case, the negative ELBO against a naive float64 reference, the mean as the representation
(deterministic, no sampling), and a tiny run with finite losses that does not collapse."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.learning.models import EncoderConfig
from core.learning.pretrain import embed, pretrain
from core.learning.pretrain_config import PretrainConfig
from core.learning.ssl import make_objective, method_defaults
from core.learning.ssl.variational import gaussian_kl, negative_elbo
from core.learning.ssl.views import FeatureLayout

TOL = dict(rel=1e-5, abs=1e-6)


def test_kl_term_by_hand():
    """Row 1: mu (1, 0), variances (1, 2): 1/2 (1 + 1 - 0 - 1) + 1/2 (0 + 2 - ln 2 - 1) = 1 - ln(2)/2.
    Row 2: mu 0, variance 1: KL 0. Mean over the rows: (1 - ln(2)/2) / 2."""
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    assert float(gaussian_kl(mu, logvar)) == pytest.approx((1 - math.log(2) / 2) / 2, **TOL)


def _naive_negative_elbo(recon, x, is_numeric, mu, logvar, beta) -> float:
    recon, x, mu, logvar = (t.double().numpy() for t in (recon, x, mu, logvar))
    total = 0.0
    for i in range(x.shape[0]):
        rec = 0.0
        for j in range(x.shape[1]):
            if is_numeric[j]:
                rec += (recon[i, j] - x[i, j]) ** 2
            else:
                p = 1 / (1 + math.exp(-recon[i, j]))
                rec += -(x[i, j] * math.log(p) + (1 - x[i, j]) * math.log(1 - p))
        kl = sum(0.5 * (mu[i, k] ** 2 + math.exp(logvar[i, k]) - logvar[i, k] - 1) for k in range(mu.shape[1]))
        total += rec + beta * kl
    return total / x.shape[0]


@pytest.mark.parametrize("beta", [1.0, 0.25])
def test_negative_elbo_against_a_naive_reference(beta):
    g = torch.Generator().manual_seed(0)
    is_numeric = torch.tensor([True, True, False, False, False])
    x = torch.randn(6, 5, generator=g)
    x[:, 2:] = (torch.rand(6, 3, generator=g) < 0.5).float()
    recon, mu, logvar = torch.randn(6, 5, generator=g), torch.rand(6, 3, generator=g), torch.randn(6, 3, generator=g)
    loss, rec, kl = negative_elbo(recon, x, is_numeric, mu, logvar, beta)
    assert float(loss) == pytest.approx(_naive_negative_elbo(recon, x, is_numeric, mu, logvar, beta), **TOL)
    assert float(loss) == pytest.approx(float(rec) + beta * float(kl), **TOL)


def test_objective_samples_with_the_reparameterisation_trick_and_embeds_the_mean():
    layout = FeatureLayout.from_arrays([0, 0, 1, 2, 2], [True, True, False, False, False])
    torch.manual_seed(0)
    objective = make_objective("vae", EncoderConfig(5, 8, 2, 4), layout).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randn(10, 2, generator=g), (torch.rand(10, 3, generator=g) < 0.5).float()], dim=1)
    x_view, eps = objective.make_views(x, torch.Generator().manual_seed(2))
    assert torch.equal(x_view, x) and eps.shape == (10, 4)
    loss, _ = objective(x, eps)
    mu = objective.encoder(x)
    logvar = objective.logvar_head(mu)
    z = mu + torch.exp(logvar / 2) * eps
    expected = _naive_negative_elbo(objective.decoder(z).detach(), x, layout.is_numeric, mu.detach(),
                                    logvar.detach(), 1.0)
    assert float(loss.detach()) == pytest.approx(expected, **TOL)
    # the representation is the mean: the encoder's embedding, the same on every call
    assert torch.equal(embed(objective.encoder, x), embed(objective.encoder, x))
    assert torch.allclose(embed(objective.encoder, x), mu.detach())
    assert method_defaults("vae")["beta"] == 1.0


def test_tiny_run_has_finite_losses_and_does_not_collapse(synthetic_table):
    t = synthetic_table
    layout = FeatureLayout.from_arrays(t["column_of_feature"], t["is_numeric"])
    config = PretrainConfig(method="vae", encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16}, epochs=3,
                            batch_size=64, patience=0, seed=0, device="cpu")
    result = pretrain(t["X"][:320], t["X"][320:448], layout, config)
    losses = [h["train_loss"] for h in result.history] + [h["val_loss"] for h in result.history]
    assert len(result.history) == 3 and np.isfinite(losses).all()
    assert result.best_val_loss < result.initial_val_loss
    assert not result.collapse["collapsed"]
