"""Benchmark: 1,000-resample percentile CIs of per-group metrics on Adult, ours against fairlearn.

Ours: `core.audit.fairness.audit_fairness(y, pred, score, sensitive, n_boot=1000)`, the call
the pipeline makes for every model: sex, race and sex & race, nine group metrics (accuracy,
balanced accuracy, TPR, FPR, FNR, precision, selection rate, ROC AUC, calibration error),
every gap with its interval, and the overall metrics. Its bootstrap resamples confusion
counts (one multinomial draw per group and replicate) and, for the score metrics, row
multiplicities (core.audit.resampling). Also timed without scores ("ours_count_metrics_s"),
which is the same set of metrics the peer computes.

Peer: fairlearn's `MetricFrame(metrics=..., n_boot=k, ci_quantiles=[0.025, 0.975])` with
accuracy, selection rate, TPR and FPR, one frame per partition our audit reports (sex, race,
sex x race). fairlearn recomputes every metric on every resample of the rows, so it is
timed at a small k and scaled to 1,000: t(no bootstrap) + 1000 x (t(k) - t(no bootstrap)) / k.

Predictions: a logistic regression (scikit-learn, seeded) fitted on the labelled training
rows of Adult's encoded matrix (the pipeline's split), thresholded at 0.5 on the test rows;
or, with `--run DIR`, a model of a finished audit run's predictions.parquet.

ratio = peer / ours (goal >= 100). Agreement: our intervals recomputed with the peer's
resampling scheme (`stratify=False`: n rows drawn from all rows, group sizes vary) at 1,000
resamples, against fairlearn's at 200, on the sex x race groups; an endpoint is compared
where its metric's denominator has >= 30 rows (fairlearn scores 0/0 as 0, we leave it out).
Monte-Carlo error of a q-quantile from B replicates, read off a 4,000-replicate reference
distribution F: se_B = (F^-1(q + d) - F^-1(q - d)) / 2 with d = sqrt(q (1 - q) / B);
the two intervals agree when every |difference| <= 4 sqrt(se_1000^2 + se_200^2).
(`--agree-boot` changes the 200.)

    python -m bench.bench_bootstrap [--run DIR] [--model NAME] [--peer-boot 20] [--quick]

Writes "bootstrap_ci" into bench/results.json (merged with what is there).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: python bench/bench_bootstrap.py
    sys.path.insert(0, str(ROOT))

from bench.common import adult_matrix, machine_line, merge_result  # noqa: E402

N_BOOT = 1000
AGREE_BOOT = 200
REFERENCE_BOOT = 4000
CONFIDENCE = 0.95
GOAL_RATIO = 100.0
MIN_DENOMINATOR = 30
MAX_Z = 4.0
METRICS = ("accuracy", "selection_rate", "tpr", "fpr")


def logistic_predictions(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame, str]:
    """(y, pred, score, sensitive) on Adult's test rows from a seeded logistic regression."""
    from sklearn.linear_model import LogisticRegression

    adult = adult_matrix(seed)
    study, X = adult.study, adult.X
    train, test = study.split.labelled_train, study.split.test
    model = LogisticRegression(max_iter=1000, random_state=seed).fit(X[train], study.labels(train))
    score = model.predict_proba(X[test])[:, 1]
    groups = study.groups(test)[list(study.spec.sensitive)]
    return study.labels(test), (score >= 0.5).astype(np.int64), score, groups, "logistic regression on Adult"


def run_predictions(run: Path, model: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame, str]:
    """(y, pred, score, sensitive) of one model of a finished run's predictions.parquet."""
    frame = pd.read_parquet(run / "predictions.parquet")
    models = [c.removeprefix("score__") for c in frame.columns if c.startswith("score__")]
    name = model or models[0]
    sensitive = [c for c in frame.columns if c not in ("row_id", "y_true") and "__" not in c]
    return (frame["y_true"].to_numpy(np.int64), frame[f"pred__{name}"].to_numpy(np.int64),
            frame[f"score__{name}"].to_numpy(np.float64), frame[sensitive].astype(str), f"{name} of {run}")


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fairlearn_metrics() -> dict[str, Callable]:
    from fairlearn.metrics import false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    return {"accuracy": accuracy_score, "selection_rate": selection_rate, "tpr": true_positive_rate,
            "fpr": false_positive_rate}


def partition_columns(attributes: list[str]) -> list[list[str]]:
    """The partitions our audit reports: each attribute, each pair, all (when >= 3)."""
    subsets = [[a] for a in attributes] + [list(pair) for pair in combinations(attributes, 2)]
    return subsets + ([attributes] if len(attributes) >= 3 else [])


def peer_frames(y: np.ndarray, p: np.ndarray, groups: pd.DataFrame, n_boot: int | None, seed: int) -> list:
    from fairlearn.metrics import MetricFrame

    boot = {"n_boot": n_boot, "ci_quantiles": [0.025, 0.975], "random_state": seed} if n_boot else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on 0/0 inside resamples
        return [MetricFrame(metrics=fairlearn_metrics(), y_true=y, y_pred=p, sensitive_features=groups[columns],
                            **boot) for columns in partition_columns(list(groups.columns))]


def agreement(y: np.ndarray, p: np.ndarray, groups: pd.DataFrame, agree_boot: int, seed: int) -> dict[str, Any]:
    """Our unstratified intervals (1,000) against fairlearn's (agree_boot) on the full intersection."""
    from core.audit import resampling
    from core.audit.fairness import audit_fairness, partitions
    from core.vocabulary import join_partition

    attributes = list(groups.columns)
    key = join_partition(attributes)
    # fairlearn resamples n rows from all rows (group sizes vary); the audit keeps each group's
    # size. The agreement check compares like with like: our resampler in fairlearn's scheme.
    ours = audit_fairness(y, p, None, groups, n_boot=0, random_state=seed)["groups"][key]
    frame = peer_frames(y, p, groups, agree_boot, seed)[-1]
    lower, upper = frame.by_group_ci
    part = next(x for x in partitions(groups) if x.key == key)
    _, ours_reps = resampling.group_replicates(y, p, None, part.codes, part.n_groups, N_BOOT,
                                               resampling.stream(seed, key), stratify=False)
    ours_ci = {m: resampling.percentile_interval(ours_reps[m], CONFIDENCE) for m in METRICS}
    _, reference = resampling.group_replicates(y, p, None, part.codes, part.n_groups, REFERENCE_BOOT,
                                              np.random.default_rng((seed, 1)), stratify=False)
    denominators = {"accuracy": "n", "selection_rate": "n", "tpr": "n_positive", "fpr": "n_negative"}
    alpha = (1 - CONFIDENCE) / 2
    diffs, zs, ses, compared = [], [], [], []
    for row in ours:
        values = tuple(row["values"][a] for a in attributes)
        label = values if len(values) > 1 else values[0]
        g = part.labels.index(row["group"])
        for metric in METRICS:
            ours_lo, ours_hi, _ = (bound[g] for bound in ours_ci[metric])
            if row[denominators[metric]] < MIN_DENOMINATOR or np.isnan(ours_lo):
                continue
            for end, q, theirs in ((ours_lo, alpha, lower), (ours_hi, 1 - alpha, upper)):
                diff = abs(float(end) - float(theirs.loc[label, metric]))
                se = np.hypot(_quantile_se(reference[metric][:, g], q, N_BOOT),
                              _quantile_se(reference[metric][:, g], q, agree_boot))
                diffs.append(diff)
                ses.append(se)
                zs.append(diff / se if se > 0 else (0.0 if diff == 0 else np.inf))
            compared.append(f"{row['group']}: {metric}")
    return {"agree_within_mc_error": bool(max(zs) <= MAX_Z), "max_abs_endpoint_diff": round(max(diffs), 5),
            "median_mc_se": round(float(np.median(ses)), 5), "max_diff_over_se": round(float(max(zs)), 3),
            "agreement_threshold": f"|diff| <= {MAX_Z:g} x Monte-Carlo s.e. of the difference",
            "endpoints_compared": len(diffs), "intervals_compared": compared,
            "agreement_setup": f"ours stratify=False n_boot={N_BOOT} vs fairlearn n_boot={agree_boot}, "
                               f"groups of '{key}' with >= {MIN_DENOMINATOR} rows in the metric's denominator"}


def _quantile_se(replicates: np.ndarray, q: float, n_boot: int) -> float:
    d = np.sqrt(q * (1 - q) / n_boot)
    lo, hi = np.nanquantile(replicates, [max(q - d, 0.0), min(q + d, 1.0)])
    return float(hi - lo) / 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished audit run folder: use its predictions.parquet")
    parser.add_argument("--model", help="model of --run (default: the first)")
    parser.add_argument("--peer-boot", type=int, default=20, help="fairlearn resamples timed (default 20)")
    parser.add_argument("--agree-boot", type=int, default=AGREE_BOOT,
                        help=f"fairlearn resamples of the agreement check (default {AGREE_BOOT})")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of ours (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="peer timed at 5 resamples, agreement at 50, 1 repeat (smoke check)")
    args = parser.parse_args(argv)
    peer_boot, agree_boot, repeats = (5, 50, 1) if args.quick else (args.peer_boot, args.agree_boot, args.repeats)

    from core.audit.fairness import audit_fairness

    y, p, s, groups, source = (run_predictions(Path(args.run), args.model) if args.run
                               else logistic_predictions(args.seed))
    print(f"{len(y)} test rows, partitions {partition_columns(list(groups.columns))}, predictions: {source}",
          file=sys.stderr)

    ours = median_time(lambda: audit_fairness(y, p, s, groups, n_boot=N_BOOT, random_state=args.seed), repeats)
    ours_counts = median_time(lambda: audit_fairness(y, p, None, groups, n_boot=N_BOOT, random_state=args.seed),
                              repeats)
    start = time.perf_counter()
    peer_frames(y, p, groups, None, args.seed)
    base = time.perf_counter() - start
    start = time.perf_counter()
    peer_frames(y, p, groups, peer_boot, args.seed)
    per_resample = (time.perf_counter() - start - base) / peer_boot
    peer = base + N_BOOT * per_resample
    agree = agreement(y, p, groups, agree_boot, args.seed)

    print(f"{N_BOOT}-resample CIs ({machine_line()})")
    print(f"  ours (audit_fairness, 9 metrics + gaps): {ours:.3f} s; 4 count metrics only: {ours_counts:.3f} s")
    print(f"  peer (fairlearn MetricFrame, 4 metrics): {peer:.1f} s "
          f"({per_resample * 1e3:.0f} ms a resample, timed at {peer_boot})")
    print(f"  ratio peer/ours: {peer / ours:.0f}  goal >= {GOAL_RATIO:g}: "
          f"{'met' if peer / ours >= GOAL_RATIO else 'NOT met'}")
    print(f"  agreement with fairlearn: {agree['agree_within_mc_error']} (max |diff| "
          f"{agree['max_abs_endpoint_diff']}, max |diff|/s.e. {agree['max_diff_over_se']} over "
          f"{agree['endpoints_compared']} endpoints)")
    entry = {
        "value": round(ours, 4), "unit": "s",
        "peer": "fairlearn MetricFrame(n_boot) with accuracy, selection rate, TPR, FPR, scaled to 1,000 resamples",
        "peer_value": round(peer, 2), "ratio": round(peer / ours, 1), "goal": f"ratio >= {GOAL_RATIO:g}",
        "met": peer / ours >= GOAL_RATIO and agree["agree_within_mc_error"],
        "ours_count_metrics_s": round(ours_counts, 4), "peer_seconds_per_resample": round(per_resample, 4),
        "peer_timed_n_boot": peer_boot, "n_boot": N_BOOT, "rows": int(len(y)),
        "partitions": [" & ".join(c) for c in partition_columns(list(groups.columns))],
        "predictions": source, **agree, "machine": machine_line()}
    path = merge_result("bootstrap_ci", entry, quick=args.quick)
    print(f"wrote bootstrap_ci to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
