"""The vectorised bootstrap of core.audit.resampling (and core.audit.comparison): agreement with fairlearn, coverage,
paired comparisons, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate
from scipy.special import expit

from core.audit.comparison import paired_gap_differences
from core.audit.fairness import audit_fairness, check_sensitive, partitions
from core.audit.metrics import confusion_counts, count_metrics, gap_values
from core.audit.resampling import (
    count_replicates,
    group_replicates,
    percentile_interval,
    score_replicates,
    uniform_multiplicities,
)

Q = (0.025, 0.975)


def quantile_se(replicates: np.ndarray, q: float, n_boot: int, delta: float = 0.01) -> float:
    """Monte-Carlo standard error of the q-quantile of n_boot bootstrap replicates:
    sqrt(q (1 - q) / n_boot) / f(x_q), the density f estimated from many `replicates` as
    2 delta / (Q(q + delta) - Q(q - delta))."""
    lo, hi = np.quantile(replicates, [q - delta, q + delta])
    return float(np.sqrt(q * (1 - q) / n_boot) * (hi - lo) / (2 * delta))


def test_intervals_agree_with_fairlearn_bootstrap_within_monte_carlo_error():
    rng = np.random.default_rng(0)
    n = 1500
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 2, n)
    pred = (rng.random(n) < np.where(group == "a", 0.3, 0.2) + 0.35 * y).astype(int)
    sensitive = pd.DataFrame({"g": group})
    n_fair = 200
    mf = MetricFrame(metrics={"selection_rate": selection_rate, "tpr": true_positive_rate},
                     y_true=y, y_pred=pred, sensitive_features=sensitive["g"],
                     n_boot=n_fair, ci_quantiles=list(Q), random_state=0)
    fair_group = mf.by_group_ci
    fair_diff = mf.difference_ci()

    n_ours, n_density = 4000, 40000
    part = partitions(check_sensitive(sensitive, n))[0]
    counts = confusion_counts(y, pred, part.codes, part.n_groups)
    used = {m: np.ones(part.n_groups, bool) for m in ("accuracy", "selection_rate", "tpr", "fpr")}
    for stratify in (False, True):  # fairlearn resamples all rows; both must agree
        if stratify:  # the audit's own scheme, through its entry point
            result = audit_fairness(y, pred, None, sensitive, n_boot=n_ours, random_state=1)
            group_ci = {m: [[row["ci"][m][k] for row in result["groups"]["g"]] for k in (0, 1)]
                        for m in ("selection_rate", "tpr")}
            gap_ci = result["gaps"]["g"]["ci"]
        else:  # fairlearn's scheme, straight from the resampler
            ours_reps = count_replicates(counts, n_ours, np.random.default_rng(1), stratify=False)
            ours_metrics, ours_gaps = count_metrics(ours_reps), gap_values(ours_reps, used, 0)
            group_ci = {m: list(np.quantile(ours_metrics[m], Q, axis=0)) for m in ("selection_rate", "tpr")}
            gap_ci = {k: list(np.quantile(ours_gaps[k], Q)) for k in ours_gaps}
        reps = count_replicates(counts, n_density, np.random.default_rng(2), stratify=stratify)
        metric_reps, gap_reps = count_metrics(reps), gap_values(reps, used, 0)
        checks = []
        for g, label in enumerate(part.labels):
            for metric in ("selection_rate", "tpr"):
                for k, q in enumerate(Q):
                    checks.append((group_ci[metric][k][g], fair_group[k].loc[label, metric],
                                   metric_reps[metric][:, g], q))
        for gap, metric in (("demographic_parity_difference", "selection_rate"),
                            ("equal_opportunity_difference", "tpr")):
            for k, q in enumerate(Q):
                checks.append((gap_ci[gap][k], fair_diff[k][metric], gap_reps[gap], q))
        for ours, theirs, density_reps, q in checks:
            se = np.hypot(quantile_se(density_reps, q, n_fair), quantile_se(density_reps, q, n_ours))
            assert abs(ours - theirs) < 4 * se, (stratify, ours, theirs, se)


def test_bootstrap_spread_matches_binomial_standard_error():
    counts = np.array([[60, 40, 80, 20], [5, 15, 170, 10]])  # n = 200 per group
    reps = count_metrics(count_replicates(counts, 20000, np.random.default_rng(0)))
    for g, (tp, fp, tn, fn) in enumerate(counts):
        n = counts[g].sum()
        sel = (tp + fp) / n
        assert reps["selection_rate"][:, g].std() == pytest.approx(np.sqrt(sel * (1 - sel) / n), rel=0.03)


def test_percentile_intervals_cover_the_truth_about_95_percent():
    rng = np.random.default_rng(0)
    sims, n, n_boot = 400, 150, 1000
    # two groups per simulation with true selection rates 0.3 and 0.45
    p_true = np.array([0.3, 0.45])
    y = rng.integers(0, 2, (sims, 2, n))
    pred = (rng.random((sims, 2, n)) < p_true[None, :, None]).astype(int)
    cells = np.stack([(pred == 1) & (y == 1), (pred == 1) & (y == 0),
                      (pred == 0) & (y == 0), (pred == 0) & (y == 1)], axis=-1).sum(axis=2)
    reps = count_replicates(cells.reshape(sims * 2, 4), n_boot, rng).reshape(n_boot, sims, 2, 4)
    lo, hi, _ = percentile_interval(count_metrics(reps)["selection_rate"][:, :, 0], 0.95)
    assert 0.92 <= np.mean((lo <= 0.3) & (0.3 <= hi)) <= 0.98
    used = {m: np.ones(2, bool) for m in ("accuracy", "selection_rate", "tpr", "fpr")}
    gap = gap_values(reps, used, 0)["demographic_parity_difference"]
    lo, hi, _ = percentile_interval(gap, 0.95)
    assert 0.92 <= np.mean((lo <= 0.15) & (0.15 <= hi)) <= 0.98

    # ROC AUC: binormal scores, true AUC = Phi(1 / sqrt 2)
    true_auc, covered = 0.7602499389065233, []
    for _ in range(150):
        labels = np.repeat([0, 1], 100)
        scores = expit(rng.normal(labels, 1.0))
        auc = score_replicates(labels, scores, np.zeros(200, int), 1, 500, rng)["roc_auc"]
        lo, hi, _ = percentile_interval(auc[:, 0], 0.95)
        covered.append(lo <= true_auc <= hi)
    assert 0.88 <= np.mean(covered) <= 0.99


def test_paired_difference_of_a_model_with_itself_is_exactly_zero():
    rng = np.random.default_rng(0)
    n = 600
    sensitive = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "race": rng.choice(["A", "B", "C"], n)})
    y, pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    result = paired_gap_differences(y, pred, pred, sensitive, n_boot=500)
    assert list(result) == ["sex", "race", "sex & race"]
    for gaps in result.values():
        for entry in gaps.values():
            assert entry["difference"] == 0.0
            assert entry["ci"] == [0.0, 0.0]
            assert entry["excludes_zero"] is False


def test_a_clearly_fairer_model_has_a_difference_excluding_zero():
    rng = np.random.default_rng(1)
    n = 2000
    sex = rng.choice(["F", "M"], n)
    y = rng.integers(0, 2, n)
    fair = (rng.random(n) < 0.2 + 0.6 * y).astype(int)
    unfair = np.where(sex == "F", fair & (rng.random(n) < 0.6), fair | (rng.random(n) < 0.2))
    result = paired_gap_differences(y, unfair, fair, pd.DataFrame({"sex": sex}), n_boot=1000)
    for gap in ("demographic_parity_difference", "equalized_odds_difference"):
        entry = result["sex"][gap]
        assert entry["model_a"] > entry["model_b"]
        assert entry["excludes_zero"] is True and entry["ci"][0] > 0
        assert entry["ci"][0] <= entry["difference"] <= entry["ci"][1]


def test_reproducible_and_partitions_draw_independently():
    rng = np.random.default_rng(3)
    n = 400
    sensitive = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "race": rng.choice(["A", "B"], n)})
    y, score = rng.integers(0, 2, n), rng.random(n)
    pred = (score > 0.5).astype(int)
    first = audit_fairness(y, pred, score, sensitive, n_boot=300, random_state=7)
    assert audit_fairness(y, pred, score, sensitive, n_boot=300, random_state=7) == first
    other = audit_fairness(y, pred, score, sensitive, n_boot=300, random_state=8)
    assert other["groups"]["sex"][0]["ci"] != first["groups"]["sex"][0]["ci"]
    alone = audit_fairness(y, pred, score, sensitive[["sex"]], n_boot=300, random_state=7)
    assert alone["groups"]["sex"] == first["groups"]["sex"]
    assert alone["gaps"]["sex"] == first["gaps"]["sex"]


def test_resamples_keep_group_sizes_and_row_counts():
    counts = np.array([[3, 1, 4, 2], [10, 0, 5, 5]])
    reps = count_replicates(counts, 50, np.random.default_rng(0))
    assert (reps.sum(axis=2) == counts.sum(axis=1)).all()
    assert (reps[:, 1, 1] == 0).all()  # an empty cell stays empty
    flat = count_replicates(counts, 50, np.random.default_rng(0), stratify=False)
    assert (flat.sum(axis=(1, 2)) == counts.sum()).all()
    weights = uniform_multiplicities(30, 40, np.random.default_rng(0))
    assert weights.shape == (40, 30) and (weights.sum(axis=1) == 30).all()


def test_undefined_replicates_are_excluded_and_counted():
    # group "rare": 2 positives in 20 rows, so about (18/20)^20 = 12% of resamples have none
    y = np.array([1, 1] + [0] * 18 + [0, 1] * 50)
    pred = np.array([1, 0] + [0, 1] * 9 + [0, 1] * 50)
    sensitive = pd.DataFrame({"g": ["rare"] * 20 + ["big"] * 100})
    result = audit_fairness(y, pred, None, sensitive, n_boot=1000, min_group_size=30)
    rare = {row["group"]: row for row in result["groups"]["g"]}["rare"]
    assert rare["small"] is True
    assert rare["ci"]["tpr"] is not None and rare["ci_excluded"]["tpr"] == 0  # a Wilson interval: no resamples
    assert result["gaps"]["g"]["equal_opportunity_difference"] is None  # the headline leaves "rare" out
    # let the rare group into the gaps to see its undefined resamples
    gaps = audit_fairness(y, pred, None, sensitive, n_boot=1000, min_group_size=1, min_class_rows=1)["gaps"]["g"]
    assert 60 <= gaps["ci_excluded"]["equal_opportunity_difference"] <= 200
    assert gaps["ci_excluded"]["demographic_parity_difference"] == 0


def test_group_replicates_shapes():
    rng = np.random.default_rng(0)
    y, pred, score = rng.integers(0, 2, 90), rng.integers(0, 2, 90), rng.random(90)
    codes = np.repeat([0, 1, 2], 30)
    reps, metrics = group_replicates(y, pred, score, codes, 3, 64, rng)
    assert reps.shape == (64, 3, 4)
    assert all(values.shape == (64, 3) for values in metrics.values())
    assert np.isfinite(metrics["roc_auc"]).all() and np.isfinite(metrics["calibration_error"]).all()


def test_pair_interval_reaches_zero_when_groups_do_not_differ():
    # equal true selection rates: the max - min gap's interval sits above 0 by construction,
    # the signed difference between the two named groups covers 0
    sensitive = pd.DataFrame({"g": np.repeat(["a", "b"], 1000)})
    pred = np.tile(np.r_[np.ones(300, int), np.zeros(700, int)], 2)
    y = np.tile([0, 1], 1000)
    gaps = audit_fairness(y, pred, None, sensitive, n_boot=1000, random_state=0)["gaps"]["g"]
    where = gaps["between"]["demographic_parity_difference"]
    assert gaps["demographic_parity_difference"] == 0.0
    assert gaps["ci"]["demographic_parity_difference"][0] > 0  # excludes its own point
    assert (where["max_group"], where["min_group"]) == ("a", "b")
    assert where["pair_ci"][0] < 0 < where["pair_ci"][1]
