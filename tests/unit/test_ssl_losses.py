"""Every SSL loss against a naive reference (Python loops over numpy float64), and the
batched views against their per-row definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.learning.models import EncoderConfig
from core.learning.ssl import make_objective
from core.learning.ssl.self_distillation import byol_loss, ema_tau, negative_cosine
from core.learning.ssl.clustering import sinkhorn, swav_loss
from core.learning.ssl.contrastive import info_nce, nt_xent
from core.learning.ssl.reconstruction import mixed_reconstruction
from core.learning.ssl.redundancy import barlow_loss, vicreg_loss
from core.learning.ssl.views import FeatureLayout, numeric_noise, swap_corrupt

TOL = dict(rel=1e-4, abs=1e-5)


def _t(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _cos(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _ref_info_nce(z, zt, tau):
    z, zt = z.double().numpy(), zt.double().numpy()
    total = 0.0
    for i in range(len(z)):
        den = sum(math.exp(_cos(z[i], zt[k]) / tau) for k in range(len(zt)))
        total += -math.log(math.exp(_cos(z[i], zt[i]) / tau) / den)
    return total / len(z)


@pytest.mark.parametrize("tau", [1.0, 0.3])
def test_info_nce(tau):
    z, zt = _t(0, 6, 4), _t(1, 6, 4)
    got = info_nce(z, zt, torch.arange(6), tau)
    assert float(got) == pytest.approx(_ref_info_nce(z, zt, tau), **TOL)


def _ref_nt_xent(z1, z2, tau):
    z = np.concatenate([z1.double().numpy(), z2.double().numpy()])
    n = len(z1)
    total = 0.0
    for a in range(2 * n):
        p = a + n if a < n else a - n
        den = sum(math.exp(_cos(z[a], z[k]) / tau) for k in range(2 * n) if k != a)
        total += -math.log(math.exp(_cos(z[a], z[p]) / tau) / den)
    return total / (2 * n)


def test_nt_xent_and_its_sharded_form():
    z1, z2 = _t(2, 8, 3), _t(3, 8, 3)
    full = nt_xent(z1, z2, 0.5)
    assert float(full) == pytest.approx(_ref_nt_xent(z1, z2, 0.5), **TOL)
    # what rank r of 2 computes: its 4 anchors against the gathered batch; the mean over
    # ranks is the single-process loss
    shards = [nt_xent(z1[r * 4:(r + 1) * 4], z2[r * 4:(r + 1) * 4], 0.5, z1, z2, r * 4)
              for r in range(2)]
    assert float(sum(shards) / 2) == pytest.approx(float(full), **TOL)


def test_byol_loss_ema_and_negative_cosine():
    p, z = _t(4, 5, 3), _t(5, 5, 3)
    ref = np.mean([np.sum((p[i].numpy() / np.linalg.norm(p[i].numpy())
                           - z[i].numpy() / np.linalg.norm(z[i].numpy())) ** 2) for i in range(5)])
    assert float(byol_loss(p, z)) == pytest.approx(ref, **TOL)
    ref_cos = -np.mean([_cos(p[i].numpy(), z[i].numpy()) for i in range(5)])
    assert float(negative_cosine(p, z)) == pytest.approx(ref_cos, **TOL)
    assert ema_tau(0, 100, 0.996) == pytest.approx(0.996)
    assert ema_tau(50, 100, 0.996) == pytest.approx(0.998)
    assert ema_tau(100, 100, 0.996) == pytest.approx(1.0)


def test_stop_gradient_on_targets():
    p, z = _t(6, 4, 3).requires_grad_(), _t(7, 4, 3).requires_grad_()
    (byol_loss(p, z) + negative_cosine(p, z)).backward()
    assert z.grad is None and p.grad is not None


def test_byol_ema_update_of_the_target_network():
    layout = FeatureLayout.all_numeric(4)
    objective = make_objective("byol", EncoderConfig(4, 8, 2, 4), layout)
    with torch.no_grad():
        for param in objective.encoder.parameters():
            param.add_(1.0)
    before = [p.clone() for p in objective.target_encoder.parameters()]
    objective.after_step(0, 10)
    tau = 0.996
    for old, online, new in zip(before, objective.encoder.parameters(),
                                objective.target_encoder.parameters()):
        assert torch.allclose(new, tau * old + (1 - tau) * online, atol=1e-6)
    assert not any(p.requires_grad for p in objective.target_encoder.parameters())


def _ref_vicreg(z1, z2, lam=25.0, mu=25.0, nu=1.0):
    a, b = z1.double().numpy(), z2.double().numpy()
    n, d = a.shape
    inv = sum((a[i, j] - b[i, j]) ** 2 for i in range(n) for j in range(d)) / (n * d)

    def var(z):
        out = 0.0
        for j in range(d):
            m = sum(z[i, j] for i in range(n)) / n
            v = sum((z[i, j] - m) ** 2 for i in range(n)) / (n - 1)
            out += max(0.0, 1.0 - math.sqrt(v + 1e-4))
        return out / d

    def cov(z):
        m = [sum(z[i, j] for i in range(n)) / n for j in range(d)]
        out = 0.0
        for j in range(d):
            for k in range(d):
                if j != k:
                    c = sum((z[i, j] - m[j]) * (z[i, k] - m[k]) for i in range(n)) / (n - 1)
                    out += c * c
        return out / d

    # The official implementation's loss: variance terms halved, covariance terms summed.
    return lam * inv + mu * (var(a) + var(b)) / 2 + nu * (cov(a) + cov(b))


def test_vicreg_loss():
    z1, z2 = 0.5 * _t(8, 7, 4), 0.5 * _t(9, 7, 4)  # std < 1: the variance hinge is active
    loss, logs = vicreg_loss(z1, z2)
    assert float(loss) == pytest.approx(_ref_vicreg(z1, z2), **TOL)
    assert float(logs["variance"]) > 0


def test_vicreg_loss_by_hand():
    """N = 2, D = 2, eps = 0. Z = [[0,0],[1,1]]: Var = 0.5 per dimension, std 1/sqrt(2),
    v(Z) = 1 - 1/sqrt(2); C(Z) = [[.5,.5],[.5,.5]], c(Z) = 2 * 0.25 / 2 = 0.25.
    Z' = [[0,0],[2,2]]: Var = 2, v(Z') = 0; C(Z') = [[2,2],[2,2]], c(Z') = 2 * 4 / 2 = 4.
    s = (1 + 1) / 4 = 0.5.  L = 25 * 0.5 + 25 * (1 - 1/sqrt(2)) / 2 + (0.25 + 4) = 20.41117;
    the paper's Eq. 6 without the halving would give 24.07233."""
    z1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    z2 = torch.tensor([[0.0, 0.0], [2.0, 2.0]], dtype=torch.float64)
    loss, logs = vicreg_loss(z1, z2, eps=0.0)
    hinge = 1 - 1 / math.sqrt(2)
    assert float(logs["invariance"]) == pytest.approx(0.5)
    assert float(logs["variance"]) == pytest.approx(hinge / 2)
    assert float(logs["covariance"]) == pytest.approx(4.25)
    assert float(loss) == pytest.approx(12.5 + 25 * hinge / 2 + 4.25)
    assert float(loss) == pytest.approx(20.411165, abs=1e-6)


def _ref_barlow(z1, z2, lambd):
    a, b = z1.double().numpy(), z2.double().numpy()
    n, d = a.shape

    def standardise(z):
        out = np.empty_like(z)
        for j in range(d):
            m = sum(z[:, j]) / n
            v = sum((z[i, j] - m) ** 2 for i in range(n)) / n
            out[:, j] = (z[:, j] - m) / math.sqrt(v + 1e-5)
        return out

    sa, sb = standardise(a), standardise(b)
    total = 0.0
    for j in range(d):
        for k in range(d):
            c = sum(sa[i, j] * sb[i, k] for i in range(n)) / n
            total += (1 - c) ** 2 if j == k else lambd * c * c
    return total


def test_barlow_loss():
    z1, z2 = _t(10, 9, 5), _t(11, 9, 5)
    assert float(barlow_loss(z1, z2, 5e-3)[0]) == pytest.approx(_ref_barlow(z1, z2, 5e-3), **TOL)


def _ref_sinkhorn(scores, eps, iters):
    s = scores.double().numpy()
    b, k = s.shape
    q = np.exp(s / eps).T
    q /= q.sum()
    for _ in range(iters):
        for r in range(k):
            q[r] /= q[r].sum() * k
        for c in range(b):
            q[:, c] /= q[:, c].sum() * b
    return (q * b).T


def test_sinkhorn_and_swav_loss():
    scores = torch.tanh(_t(12, 6, 4))  # cosine-like scores in [-1, 1]
    codes = sinkhorn(scores, 0.05, 3)
    np.testing.assert_allclose(codes.numpy(), _ref_sinkhorn(scores, 0.05, 3), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(codes.sum(1).numpy(), np.ones(6), atol=1e-5)  # one unit per row
    s1, s2 = _t(13, 6, 4), _t(14, 6, 4)
    q1, q2 = sinkhorn(s1), sinkhorn(s2)
    ref = 0.0
    for i in range(6):
        for a_codes, b_scores in ((q1, s2), (q2, s1)):
            logits = b_scores[i].double().numpy() / 0.1
            log_p = logits - math.log(sum(math.exp(v) for v in logits))
            ref += -0.5 * sum(a_codes[i, k].item() * log_p[k] for k in range(4))
    assert float(swav_loss(s1, s2, q1, q2, 0.1)) == pytest.approx(ref / 6, **TOL)


def test_mixed_reconstruction_and_vime_total():
    pred, target = _t(15, 4, 5), (_t(16, 4, 5) > 0).float()
    is_numeric = torch.tensor([True, True, False, False, False])
    target[:, :2] = _t(17, 4, 2)
    ref = 0.0
    for i in range(4):
        for j in range(5):
            x, y = pred[i, j].item(), target[i, j].item()
            if is_numeric[j]:
                ref += (x - y) ** 2
            else:
                p = 1 / (1 + math.exp(-x))
                ref += -(y * math.log(p) + (1 - y) * math.log(1 - p))
    assert float(mixed_reconstruction(pred, target, is_numeric)) == pytest.approx(ref / 20, **TOL)

    layout = FeatureLayout.from_arrays([0, 0, 1, 1, 1], is_numeric.numpy())
    vime = make_objective("vime", EncoderConfig(5, 8, 2, 4), layout)
    loss, logs = vime.loss(target, torch.Generator().manual_seed(0))
    assert float(loss.detach()) == pytest.approx(float(logs["mask"] + 2.0 * logs["reconstruction"]), rel=1e-6)


def test_vime_mask_target_is_the_value_changed():
    """p_m = 1 selects every cell. Column 0 is the same value (0) in both rows, so whichever
    row donates it, both masked cells keep their value: the target is 0 there, not 1.
    Column 1 differs between the rows (1 vs 2): a cell changed exactly where its donor was the
    other row, which x~ shows; every target there is 1[x~ != x]."""
    layout = FeatureLayout.from_arrays([0, 1], [True, True])
    vime = make_objective("vime", EncoderConfig(2, 8, 2, 4), layout, p_m=1.0)
    x = torch.tensor([[0.0, 1.0], [0.0, 2.0]])
    seen = set()
    for seed in range(8):  # several draws of the donors; column 0 is 0 in every one
        x_tilde, target, clean = vime.make_views(x, torch.Generator().manual_seed(seed))
        assert torch.equal(clean, x)
        assert torch.equal(target[:, 0], torch.zeros(2))
        for i in range(2):
            donor_was_other_row = float(x_tilde[i, 1]) != float(x[i, 1])
            assert float(target[i, 1]) == float(donor_was_other_row)
            seen.add(donor_was_other_row)
    assert seen == {True, False}  # both kinds of masked cell occurred
    # The loss's mask term is BCE against that target: with the estimator's logits l,
    # BCE = mean over the 4 cells of -[m log s(l) + (1 - m) log(1 - s(l))].
    x_tilde, target, clean = vime.make_views(x, torch.Generator().manual_seed(0))
    logits = vime.mask_head(vime.encoder(x_tilde)).detach()
    by_hand = 0.0
    for i in range(2):
        for j in range(2):
            p = 1 / (1 + math.exp(-float(logits[i, j])))
            m = float(target[i, j])
            by_hand -= m * math.log(p) + (1 - m) * math.log(1 - p)
    _, logs = vime.compute_loss(x_tilde, target, clean)
    assert float(logs["mask"]) == pytest.approx(by_hand / 4, **TOL)


def test_vime_mask_target_ignores_numeric_noise():
    """Noise touches every numeric cell; the target is still whether the swap changed the value."""
    layout = FeatureLayout.from_arrays([0, 1], [True, True])
    vime = make_objective("vime", EncoderConfig(2, 8, 2, 4), layout, p_m=0.5, noise_std=0.1)
    x = torch.zeros(6, 2)  # every donor holds the same value: nothing changes
    _, target, _ = vime.make_views(x, torch.Generator().manual_seed(3))
    assert torch.equal(target, torch.zeros(6, 2))


# --- views ------------------------------------------------------------------------------

LAYOUT = FeatureLayout.from_arrays([0, 1, 1, 2, 2, 2, 3], [True, True, False, False, False,
                                                           False, True])


def _rows(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 7, generator=g)
    x[:, 2] = (torch.rand(n, generator=g) < 0.3).float()             # a missing indicator
    x[:, 3:6] = torch.eye(3)[torch.randint(0, 3, (n,), generator=g)]  # a one-hot block
    return x


def test_swap_corruption_moves_whole_columns_from_one_donor():
    x = _rows(64)
    x_tilde, mask = swap_corrupt(x, LAYOUT, 0.6, torch.Generator().manual_seed(1))
    col = LAYOUT.column_of_feature
    for i in range(64):  # the per-row definition, checked naively
        for c in range(4):
            feats = (col == c).nonzero().flatten()
            flags = mask[i, feats]
            assert bool(flags.all()) or not bool(flags.any())   # one decision per column
            block = x_tilde[i, feats]
            if not flags.any():
                assert torch.equal(block, x[i, feats])
            else:  # the whole block equals the block of some row of the batch
                assert any(torch.equal(block, x[r, feats]) for r in range(64))
    assert torch.equal(x_tilde[:, 3:6].sum(1), torch.ones(64))     # one-hots stay one-hot
    rate = mask[:, [0, 1, 3, 6]].float().mean()
    assert 0.5 < float(rate) < 0.7


def test_views_are_reproducible_and_noise_is_numeric_only():
    x = _rows(32)
    a = swap_corrupt(x, LAYOUT, 0.3, torch.Generator().manual_seed(5))[0]
    b = swap_corrupt(x, LAYOUT, 0.3, torch.Generator().manual_seed(5))[0]
    assert torch.equal(a, b)
    noisy = numeric_noise(x, LAYOUT, 0.1, torch.Generator().manual_seed(2))
    changed = (noisy != x).any(0)
    assert changed.tolist() == LAYOUT.is_numeric.tolist()
    assert numeric_noise(x, LAYOUT, 0.0, torch.Generator()) is x


def test_layout_validation():
    from core.errors import InputError

    with pytest.raises(InputError):
        FeatureLayout.from_arrays([0, 1], [True])
    assert FeatureLayout.from_dict(LAYOUT.to_dict()).to_dict() == LAYOUT.to_dict()
    assert LAYOUT.n_columns == 4 and LAYOUT.n_features == 7
