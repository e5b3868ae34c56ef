"""Reconstruction objectives: VIME (self-supervised part) and a denoising autoencoder.

Both reconstruct the clean row x (n, d) from a corrupted one. The reconstruction loss is
mixed by feature kind, so one-hot blocks and missing indicators (0/1 features) are treated
as probabilities and standardised numerics as real values:
    rec(x^, x) = 1/(n d) sum_i [ sum_{j numeric} (x^_ij - x_ij)^2
                                 + sum_{j not numeric} BCE(sigmoid(x^_ij), x_ij) ]
(x^ are logits on the non-numeric features.) BCE per 0/1 feature rather than a softmax
cross-entropy per block keeps blocks with no 1 (an unseen category) well defined.

VIME (Yoon et al. 2020, "VIME: Extending the Success of Self- and Semi-supervised Learning
to Tabular Domain", NeurIPS): columns masked at p_m = 0.3 and filled from other rows; a
mask estimator predicts which features changed, a feature estimator the clean row:
    L = BCE(m^, m) + alpha * rec(x^, x),   alpha = 2.0
with BCE averaged over n*d and m[i, j] = 1[x~_ij != x_ij], the paper's target (VIME's code:
`m_new = 1 * (x != x_tilde)`): a masked cell whose donor row holds the same value is 0, since
nothing in the row can tell it was selected (on Adult's capital gain/loss ~85% of masked
cells keep their value, mostly zeros). Elementwise, so a swapped one-hot block whose
category changed marks its old and new features, and one whose category stayed marks none.
The mask is taken before the (optional, default off) numeric noise, which would otherwise
mark every numeric cell.

DAE (Vincent et al. 2008, "Extracting and Composing Robust Features with Denoising
Autoencoders", ICML; swap noise as popularised by the Porto Seguro winning solution, Jahrer
2018): columns swapped with other rows at rate 0.15, decoder reconstructs x:
    L = rec(x^, x)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from core.learning.models import EncoderConfig, MLPHead
from core.learning.ssl.base import Objective
from core.learning.ssl.views import FeatureLayout, numeric_noise, swap_corrupt


def mixed_reconstruction(prediction: torch.Tensor, target: torch.Tensor,
                         is_numeric: torch.Tensor) -> torch.Tensor:
    """Squared error on numeric features + BCE-with-logits on the others, mean over n*d."""
    numeric = is_numeric.to(prediction.dtype)
    squared = (prediction - target) ** 2
    bce = F.binary_cross_entropy_with_logits(prediction, target.clamp(0, 1), reduction="none")
    return (numeric * squared + (1 - numeric) * bce).mean()


class Vime(Objective):
    """Mask estimation + feature reconstruction from a column-masked row (p_m 0.3, alpha 2)."""

    name = "vime"
    paper = "Yoon et al., VIME, NeurIPS 2020"
    defaults: dict[str, Any] = {"p_m": 0.3, "alpha": 2.0, "noise_std": 0.0, "head_hidden": 256,
                                "head_depth": 1}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p, d, k = self.params, encoder_config.input_dim, encoder_config.embed_dim
        # VIME's estimators are single dense layers on the encoding (head_depth 1).
        self.mask_head = MLPHead(k, p["head_hidden"], d, p["head_depth"])
        self.feature_head = MLPHead(k, p["head_hidden"], d, p["head_depth"])

    def make_views(self, x, generator):
        x_tilde, _ = swap_corrupt(x, self.layout, self.params["p_m"], generator)
        changed = x_tilde != x  # the target: the value changed, not "the column was selected"
        x_tilde = numeric_noise(x_tilde, self.layout, self.params["noise_std"], generator)
        return x_tilde, changed.to(x.dtype), x

    def compute_loss(self, x_tilde, mask, x):
        h = self.encoder(x_tilde)
        mask_loss = F.binary_cross_entropy_with_logits(self.mask_head(h), mask)
        rec_loss = mixed_reconstruction(self.feature_head(h), x, self.layout_numeric)
        loss = mask_loss + self.params["alpha"] * rec_loss
        return loss, {"mask": mask_loss.detach(), "reconstruction": rec_loss.detach()}


class DenoisingAutoencoder(Objective):
    """Reconstruct the clean row from a swap-noised one (rate 0.15)."""

    name = "dae"
    paper = "Vincent et al., ICML 2008; swap noise: Jahrer, Porto Seguro 2018"
    defaults: dict[str, Any] = {"swap_rate": 0.15, "noise_std": 0.0, "decoder_hidden": 256,
                                "decoder_depth": 2}

    def __init__(self, encoder_config: EncoderConfig, layout: FeatureLayout, **params: Any):
        super().__init__(encoder_config, layout, **params)
        p = self.params
        self.decoder = MLPHead(encoder_config.embed_dim, p["decoder_hidden"],
                               encoder_config.input_dim, p["decoder_depth"])

    def make_views(self, x, generator):
        x_tilde, _ = swap_corrupt(x, self.layout, self.params["swap_rate"], generator)
        return numeric_noise(x_tilde, self.layout, self.params["noise_std"], generator), x

    def compute_loss(self, x_tilde, x):
        loss = mixed_reconstruction(self.decoder(self.encoder(x_tilde)), x, self.layout_numeric)
        return loss, {"reconstruction": loss.detach()}
