"""Generative objective: the variational autoencoder (Kingma & Welling 2014, "Auto-Encoding
Variational Bayes", ICLR).

Gaussian encoder q(z | x) = N(mu(x), diag(exp(logvar(x)))). Here the Encoder's embedding
*is* the mean, mu = f(x), and a linear head gives the log-variance, logvar = W f(x) + b: so
the encoder handed to fine-tuning and `embed` return the posterior mean, deterministically
(no sampling outside training). Reparameterisation: z = mu + exp(logvar / 2) * eps,
eps ~ N(0, I), drawn in `make_views` from the run's generator (outside the forward pass, so
runs are reproducible and replicates can be batched).

Decoder g per column type, as the DAE's (core.learning.ssl.reconstruction): numeric features
real-valued, 0/1 features (one-hot, missing indicators) logits. Negative ELBO per row,
averaged over the batch, with a beta weight on the KL term (beta = 1 is the ELBO itself):
    rec_i = sum_{j numeric} (g(z_i)_j - x_ij)^2 + sum_{j not numeric} BCE(sigmoid(g(z_i)_j), x_ij)
    KL_i  = 1/2 sum_k ( mu_ik^2 + exp(logvar_ik) - logvar_ik - 1 )     (closed form, to N(0, I))
    L     = 1/n sum_i ( rec_i + beta KL_i )
The squared error is the negative log-likelihood of a Gaussian decoder with variance 1/2 (up
to a constant), the BCE that of a Bernoulli one. rec_i is d times the DAE's reconstruction
loss (a mean over n x d entries), because the ELBO sums the log-likelihood over the features;
with the mean the KL term would outweigh the data by a factor d and the posterior collapse.
The embedding's last ReLU keeps mu >= 0: a Gaussian family with non-negative means, whose KL
to N(0, I) is still the closed form above.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from core.learning.models import EncoderConfig, MLPHead
from core.learning.ssl.base import Objective
from core.learning.ssl.reconstruction import mixed_reconstruction
from core.learning.ssl.views import FeatureLayout


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL( N(mu, diag(exp(logvar))) || N(0, I) ) (see the module docstring)."""
    return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(dim=1).mean()


def negative_elbo(reconstruction: torch.Tensor, x: torch.Tensor, is_numeric: torch.Tensor,
                  mu: torch.Tensor, logvar: torch.Tensor, beta: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L, mean rec_i, mean KL_i): L = 1/n sum_i (rec_i + beta KL_i)."""
    rec = mixed_reconstruction(reconstruction, x, is_numeric) * x.shape[1]   # per row: a sum over d
    kl = gaussian_kl(mu, logvar)
    return rec + beta * kl, rec, kl


class VariationalAutoencoder(Objective):
    """Gaussian encoder (mean = the embedding, linear log-variance head), decoder per column
    type, negative ELBO with beta 1."""

    name = "vae"
    paper = "Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014"
    defaults: dict[str, Any] = {"beta": 1.0, "decoder_hidden": 256, "decoder_depth": 2}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p, k = self.params, encoder_config.embed_dim
        self.logvar_head = nn.Linear(k, k)
        self.decoder = MLPHead(k, p["decoder_hidden"], encoder_config.input_dim, p["decoder_depth"])

    def make_views(self, x, generator):
        eps = torch.randn((x.shape[0], self.encoder_config.embed_dim), generator=generator,
                          device=x.device, dtype=x.dtype)
        return x, eps

    def compute_loss(self, x, eps):
        mu = self.encoder(x)
        logvar = self.logvar_head(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        loss, rec, kl = negative_elbo(self.decoder(z), x, self.layout_numeric, mu, logvar,
                                      self.params["beta"])
        return loss, {"reconstruction": rec.detach(), "kl": kl.detach()}
