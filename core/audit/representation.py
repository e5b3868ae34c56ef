"""What an encoder's representation reveals, and whom it serves: UMAP, leakage, CKA (kNN: core.audit.knn).

Every function takes plain arrays: `embeddings` (n, k) float, sensitive attributes as a 1-D
array of group labels (one attribute, or an intersection joined with vocabulary.INTERSECTION),
labels 0/1.
None needs the model object. Results meant for report.json are dicts of Python scalars;
a value that is undefined (a probe with one group, CKA of a constant representation) is
`None`, never 0. Decisions and their reasons are in docs/representation.md.

umap-learn is imported inside `project_umap` only: importing it compiles numba code
(12 s on an empty cache), which pages that only need leakage or CKA should not pay.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import t as student_t
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from core.audit.umap_cache import cache_umap_kernels
from core.errors import InputError
from core.vocabulary import INTERSECTION

#: Above this many embedded rows `project_umap(neighbours="auto")` uses umap's NN-descent.
EXACT_NEIGHBOURS_MAX_ROWS = 20_000

#: `project_umap` embeds a display subsample of at most this many rows by default: as many as
#: its exact neighbour graph takes, so the map's cost stops growing with the table (issue 22;
#: 50,000 before, which on Adult x4's 36,178 test rows meant NN-descent over all of them).
UMAP_MAX_ROWS = EXACT_NEIGHBOURS_MAX_ROWS

#: Label of the pooled group that too-small groups are merged into for the leakage probe.
OTHER_GROUP = "(other)"

#: Rows a leakage probe is fitted and scored on (stratified by group): a linear probe of ~64 columns
#: has learnt what it can by then, and its L-BFGS cost grows with the rows (issue 22).
PROBE_MAX_ROWS = 10_000

#: Confidence of the fold-based interval around a probe's balanced accuracy.
PROBE_CONFIDENCE = 0.95

#: How that interval is drawn, recorded beside it (docs/representation.md).
PROBE_INTERVAL_METHOD = "t over folds"


# ----------------------------------------------------------------------------- validation


def _as_matrix(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """Return `values` as a finite 2-D float array; raise InputError otherwise."""
    array = np.asarray(values)
    if array.ndim != 2:
        raise InputError(
            f"{name} must be a 2-D array (rows x dimensions), got shape {array.shape}",
            "pass one row per example",
        )
    if not np.issubdtype(array.dtype, np.number):
        raise InputError(f"{name} must be numeric, got dtype {array.dtype}", "encode it first")
    if n is not None and array.shape[0] != n:
        raise InputError(
            f"{name} has {array.shape[0]} rows but the other inputs have {n}",
            "pass arrays computed on the same rows, in the same order",
        )
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name} contains NaN or infinite values", "check the encoder output")
    return array


def _as_groups(values: Any, name: str, n: int) -> np.ndarray:
    """Return group labels as a 1-D array of str of length `n`."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise InputError(
                f"{name} must be one column, got {values.shape[1]}",
                f"pass one attribute at a time, or join an intersection with '{INTERSECTION}'",
            )
        values = values.iloc[:, 0]
    array = np.asarray(values, dtype=object)
    if array.ndim != 1 or array.shape[0] != n:
        raise InputError(
            f"{name} must be a 1-D array of {n} group labels, got shape {array.shape}",
            "pass one label per row",
        )
    # Object dtype, not numpy's fixed-width '<U': relabelling a row "(other)" must not be
    # truncated to the width of the longest original label.
    return pd.Series(array).astype(str).to_numpy(dtype=object)


# ----------------------------------------------------------------------------- UMAP


def stratified_subsample(
    strata: Any,
    max_rows: int,
    *,
    min_group_rows: int = 500,
    random_state: int = 0,
) -> np.ndarray:
    """Row positions of a display subsample of at most `max_rows` rows, stratified by group.

    With n rows in groups of sizes n_g, each group first gets a floor of
    f_g = min(n_g, f) rows, where f = min(min_group_rows, max_rows // G) for G groups;
    the remaining R = max_rows - sum_g f_g rows are shared in proportion to what is left
    of each group, q_g = R * (n_g - f_g) / sum_h (n_h - f_h), rounded down with the
    leftover rows going to the largest remainders. Rows are drawn uniformly without
    replacement within each group. A small group therefore keeps all its rows up to f, and
    beyond that its share of the population; no group disappears from the plot.

    Returns the sorted int64 positions (all rows when n <= max_rows).
    """
    strata = np.asarray(strata, dtype=object)
    n = strata.shape[0]
    if max_rows < 1:
        raise InputError(f"max_rows must be at least 1, got {max_rows}", "pass a positive number")
    if n <= max_rows:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(random_state)
    codes = pd.factorize(pd.Series(strata).astype(str), sort=True)[0]
    sizes = np.bincount(codes)
    floor_rows = max(1, min(min_group_rows, max_rows // len(sizes)))
    quota = np.minimum(sizes, floor_rows)
    remaining = max_rows - int(quota.sum())
    rest = sizes - quota
    if remaining > 0 and rest.sum() > 0:
        share = remaining * rest / rest.sum()
        extra = np.floor(share).astype(np.int64)
        leftover = remaining - int(extra.sum())
        # Largest-remainder rounding; ties broken by group order so the result is stable.
        order = np.argsort(-(share - extra), kind="stable")
        extra[order[:leftover]] += 1
        quota = quota + np.minimum(extra, rest)
    picked = [
        rng.choice(np.flatnonzero(codes == g), size=int(quota[g]), replace=False)
        for g in range(len(sizes))
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def exact_neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k-nearest neighbours of every row, itself first, in umap's layout.

    Returns (indices int32 (n, k), distances float32 (n, k)) with column 0 the row itself at
    distance 0, as umap-learn's `precomputed_knn` expects. Brute force with scikit-learn,
    O(n^2 d): exact and deterministic, and free of pynndescent's numba compilation (about
    40 s once per process here). Measured on the 2 shared cores: 1.4-1.8 s for
    15,000 x 64 and 17-19 s for 45,000 x 64, where NN-descent, once compiled, takes 0.6 s
    and 3-3.6 s; hence `project_umap` uses it only up to EXACT_NEIGHBOURS_MAX_ROWS rows.
    """
    n = x.shape[0]
    search = NearestNeighbors(n_neighbors=k - 1, algorithm="brute").fit(x)
    # kneighbors(None) leaves each row itself out, also when it has exact duplicates.
    distances, indices = search.kneighbors(None)
    indices = np.column_stack([np.arange(n), indices]).astype(np.int32)
    distances = np.column_stack([np.zeros(n), distances]).astype(np.float32)
    return indices, distances


def project_umap(
    embeddings: Any,
    *,
    random_state: int = 0,
    max_rows: int = UMAP_MAX_ROWS,
    strata: Any = None,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    min_group_rows: int = 500,
    neighbours: str = "auto",
    n_epochs: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """2-D UMAP of the embeddings (umap-learn, Euclidean metric).

    `n_epochs` layout-optimisation epochs: 200 is umap-learn's own choice above 10,000 rows;
    below that it would use 500, which on Adult's 9,045 test rows took 2.5x as long for a
    picture that reads the same (docs/performance.md).

    Above `max_rows` rows, a display subsample is embedded instead: stratified by `strata`
    (one group label per row) with `stratified_subsample`, or uniform when `strata` is None.

    Determinism: with `random_state` set, umap-learn runs its optimisation on one thread
    (`n_jobs=1`), which makes the coordinates reproducible for a given seed at the price of
    not using the other cores (see docs/representation.md for timings). `transform_seed` is
    set to the same seed although no `transform` is called here. With m embedded rows,
    n_neighbors is capped at m - 1, and below 2 * n_neighbors rows the layout starts from a
    random rather than a spectral initialisation (which fails on tiny graphs).

    Neighbour graph: `neighbours="exact"` computes it with `exact_neighbours` (no numba
    compilation, cost growing as m^2); "approximate" leaves it to umap-learn (exact below
    4,096 rows, pynndescent's NN-descent above, ~40 s of compilation on its first use in a
    process); "auto" is exact up to EXACT_NEIGHBOURS_MAX_ROWS (20,000) rows. The choice
    changes the coordinates slightly, not their reproducibility.

    Returns `(coords, row_index)`: coords float32 of shape (m, 2), and the int64 positions
    (sorted) of the m embedded rows in the input.
    """
    if neighbours not in ("auto", "exact", "approximate"):
        raise InputError(
            f"unknown neighbours={neighbours!r}", "use 'auto', 'exact' or 'approximate'"
        )
    x = _as_matrix(embeddings, "embeddings")
    n = x.shape[0]
    if n < 3:
        raise InputError(f"UMAP needs at least 3 rows, got {n}", "embed more rows")
    if strata is not None:
        strata = _as_groups(strata, "strata", n)
        row_index = stratified_subsample(
            strata, max_rows, min_group_rows=min_group_rows, random_state=random_state
        )
    elif n > max_rows:
        rng = np.random.default_rng(random_state)
        row_index = np.sort(rng.choice(n, size=max_rows, replace=False)).astype(np.int64)
    else:
        row_index = np.arange(n, dtype=np.int64)

    import umap  # noqa: PLC0415 - costly numba import, see module docstring

    cache_umap_kernels()

    sample = np.ascontiguousarray(x[row_index], dtype=np.float32)
    k = int(min(n_neighbors, len(row_index) - 1))
    exact = neighbours == "exact" or (
        neighbours == "auto" and len(row_index) <= EXACT_NEIGHBOURS_MAX_ROWS
    )
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=k,
        min_dist=min_dist,
        n_epochs=n_epochs,
        # The spectral initialisation fails on graphs of a handful of points (k >= N).
        init="spectral" if len(row_index) > 2 * n_neighbors else "random",
        random_state=random_state,
        transform_seed=random_state,
        n_jobs=1,
        precomputed_knn=exact_neighbours(sample, k) if exact else (None, None, None),
    )
    with warnings.catch_warnings():
        # Without pynndescent's index, `transform` is unavailable; we never call it.
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
        coords = reducer.fit_transform(sample)
    return np.asarray(coords, dtype=np.float32), row_index


def warm_up_umap(rows: int, random_state: int = 0) -> None:
    """Compile the numba code `project_umap` will need for `rows` embedded rows, on a tiny table.

    umap-learn compiles most of its functions again in every process (numba cannot cache them:
    8-10 s of CPU on the exact-neighbour path, and ~40 s more for pynndescent's NN-descent on the
    approximate one). Compiled code depends on the argument types, not the sizes, so a projection
    of 200 random rows (exact path) or 4,200 (approximate: umap-learn searches exactly below
    4,096) compiles what the real call will use. The audit's worker processes run this as they
    start, while pretraining leaves them idle. It draws from its own generator only.
    """
    approximate = min(rows, UMAP_MAX_ROWS) > EXACT_NEIGHBOURS_MAX_ROWS
    size = 4_200 if approximate else 200
    sample = np.random.default_rng(random_state).standard_normal((size, 8)).astype(np.float32)
    project_umap(sample, random_state=random_state, neighbours="approximate" if approximate else "exact")


# ----------------------------------------------------------------------------- leakage


def _probe_targets(
    attribute: np.ndarray, min_group_rows: int, n_splits: int
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Merge groups under `min_group_rows` into OTHER_GROUP; leave out what is < n_splits.

    Returns (kept row mask, probe target for kept rows, names of merged groups, names of
    groups left out).
    """
    values, counts = np.unique(attribute, return_counts=True)
    small = values[counts < min_group_rows]
    target = attribute.copy()
    merged: list[str] = []
    if len(small) > 1:
        merged = [str(v) for v in small]
        target[np.isin(attribute, small)] = OTHER_GROUP
    # A lone small group, or a merged pool, still under n_splits rows cannot be stratified
    # into the folds; its rows leave the probe (reported, never silently).
    values, counts = np.unique(target, return_counts=True)
    too_small = values[counts < n_splits]
    keep = ~np.isin(target, too_small)
    excluded = sorted({str(v) for v in attribute[~keep]})
    return keep, target[keep], merged, excluded


def _probe(x: np.ndarray, y: np.ndarray, n_splits: int, random_state: int) -> list[float]:
    """Per-fold balanced accuracy of a standardised logistic probe predicting y from x.

    One thread: these problems (thousands of rows, ~100 columns) gain nothing from more, and
    on a busy machine OpenMP/BLAS threads competing for cores made a probe 3-10x slower."""
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    scores = []
    with threadpool_limits(limits=1):
        for train, test in folds.split(x, y):
            probe = make_pipeline(
                StandardScaler(),
                LogisticRegression(class_weight="balanced", max_iter=2000),
            )
            probe.fit(x[train], y[train])
            scores.append(float(balanced_accuracy_score(y[test], probe.predict(x[test]))))
    return scores


def fold_interval(scores: list[float], confidence: float = PROBE_CONFIDENCE) -> list[float] | None:
    """A t-interval for the probe's mean score over its K folds:
    mean +- t_{(1+confidence)/2, K-1} * s / sqrt(K), s the sample standard deviation (ddof 1).

    The folds' training sets overlap, so their scores are not independent and the interval
    is somewhat narrow (Bengio & Grandvalet 2004: K-fold CV has no unbiased variance
    estimator); it describes how much the score moves with the rows the probe sees, and
    is what "a linear probe can read it" is decided on (`probe_reads_attribute`).
    None with fewer than two folds."""
    k = len(scores)
    if k < 2:
        return None
    mean = float(np.mean(scores))
    half = float(student_t.ppf((1 + confidence) / 2, k - 1) * np.std(scores, ddof=1) / np.sqrt(k))
    return [mean - half, mean + half]


def probe_reads_attribute(probe: dict[str, Any]) -> bool | None:
    """"A linear probe can read it": the fold interval's lower end lies above chance.

    None when the probe is undefined (one group) or has no interval (runs stored before the
    interval was recorded; their readers fall back to their own rule)."""
    interval, chance = probe.get("interval"), probe.get("chance")
    if interval is None or chance is None:
        return None
    return bool(interval[0] > chance)


def attribute_leakage(
    embeddings: Any,
    attribute_values: Any,
    *,
    n_splits: int = 5,
    random_state: int = 0,
    min_group_rows: int | None = None,
    confidence: float = PROBE_CONFIDENCE,
    max_rows: int = PROBE_MAX_ROWS,
) -> dict[str, Any]:
    """How well a linear probe recovers a sensitive attribute from the embeddings.

    Above `max_rows` rows the probe sees a subsample stratified by the attribute
    (`stratified_subsample`, seeded by `random_state`; `n_total` and `sample_seed` say so):
    its cost then stays bounded, and its error against the probe of every row is measured in
    tests/unit/test_scale_subsamples.py and docs/performance.md.

    Probe: StandardScaler + LogisticRegression(class_weight='balanced', lbfgs; multinomial
    when there are more than two groups), fitted inside each of `n_splits` stratified,
    shuffled folds (`random_state`). Score: balanced accuracy on the held-out fold,
    BA = (1/G) sum_g recall_g, averaged over folds. A constant predictor scores
    chance = 1/G whatever the group sizes, so BA well above 1/G means the attribute is
    linearly decodable.

    Groups with fewer than `min_group_rows` rows (default 2 * n_splits) are merged into
    one group "(other)" when there are at least two of them; a group (or merged pool) still
    under `n_splits` rows is left out of the probe (`excluded_groups`, `n_excluded`). G counts the groups after
    merging. With fewer than two groups left, leakage is undefined: BA, chance and std are
    None and `note` says why.

    Returns {"balanced_accuracy", "chance", "std" (across folds, ddof 0), "interval" (the
    `fold_interval` at `confidence`), "interval_method", "readable" (`probe_reads_attribute`),
    "n_splits", "n" (rows probed), "n_total", "sample_seed" (None: every row), "n_groups",
    "merged_groups", "excluded_groups", "n_excluded", "note"}.
    The folds depend on the attribute and the row count only, never on the matrix probed, so
    probes of different matrices on the same rows are paired.
    """
    x = _as_matrix(embeddings, "embeddings")
    attribute = _as_groups(attribute_values, "attribute_values", x.shape[0])
    if n_splits < 2:
        raise InputError(f"n_splits must be at least 2, got {n_splits}", "use 5")
    n_total = x.shape[0]
    sample = stratified_subsample(attribute, max_rows, random_state=random_state)
    x, attribute = x[sample], attribute[sample]
    threshold = 2 * n_splits if min_group_rows is None else min_group_rows
    keep, target, merged, excluded = _probe_targets(attribute, threshold, n_splits)
    n_groups = len(np.unique(target))
    result: dict[str, Any] = {
        "balanced_accuracy": None,
        "chance": None,
        "std": None,
        "interval": None,
        "interval_method": PROBE_INTERVAL_METHOD,
        "readable": None,
        "n_splits": n_splits,
        "n": int(keep.sum()),
        "n_total": n_total,
        "sample_seed": random_state if n_total > max_rows else None,
        "n_groups": n_groups,
        "merged_groups": merged,
        "excluded_groups": excluded,
        "n_excluded": int((~keep).sum()),
        "note": "",
    }
    if n_groups < 2:
        result["note"] = (
            f"fewer than two groups with at least {n_splits} rows; leakage is undefined"
        )
        return result
    if x.shape[1] == 0:
        result["note"] = "no columns to probe"
        return result
    scores = _probe(x[keep].astype(np.float64), target, n_splits, random_state)
    result.update(
        balanced_accuracy=float(np.mean(scores)),
        chance=1.0 / n_groups,
        std=float(np.std(scores)),
        interval=fold_interval(scores, confidence),
    )
    result["readable"] = probe_reads_attribute(result)
    return result


def raw_feature_leakage(
    features: Any,
    attribute_values: Any,
    own_features: slice | list[int] | None,
    *,
    n_splits: int = 5,
    random_state: int = 0,
    confidence: float = PROBE_CONFIDENCE,
) -> dict[str, Any]:
    """The leakage probe on the raw (encoded) features, with and without the attribute's own.

    `own_features` are the encoded columns of the attribute's original column (its one-hot
    block, or its value and missing indicator; `TabularEncoder.column_slices_[attribute]`),
    None when the attribute is not a feature (unaware training, or left out of the features).
    With the attribute among the features, every probe reads it almost perfectly; the probe
    without its columns says what the other columns (proxies) alone reveal. Both use the
    same folds as the embedding probes (`attribute_leakage`), so all three are paired.

    Returns {"all": probe on every feature, "without_attribute": probe without `own_features`
    plus "n_dropped", the number of encoded columns left out (0: the same probe as "all")}.
    """
    x = _as_matrix(features, "features")
    probe = partial(attribute_leakage, attribute_values=attribute_values, n_splits=n_splits,
                    random_state=random_state, confidence=confidence)
    everything = probe(x)
    keep = np.ones(x.shape[1], dtype=bool)
    if own_features is not None:
        keep[own_features] = False
    n_dropped = int((~keep).sum())
    without = dict(everything) if n_dropped == 0 else probe(x[:, keep])
    if keep.sum() == 0:
        without["note"] = "the attribute's own columns are the only features; nothing else to probe"
    return {"all": everything, "without_attribute": {**without, "n_dropped": n_dropped}}


def beside_raw_features(probe: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """A model's embedding probe (`attribute_leakage`) with the raw-feature probes of the same
    attribute (`raw_feature_leakage`) set beside it under flat report.json keys: `raw_features_*`
    (every feature) and `raw_features_without_attribute_*` (what the proxies alone reveal)."""
    everything, without = raw["all"], raw["without_attribute"]
    return {**probe,
            "raw_features_balanced_accuracy": everything["balanced_accuracy"],
            "raw_features_std": everything["std"],
            "raw_features_interval": everything["interval"],
            "raw_features_readable": everything["readable"],
            "raw_features_without_attribute_balanced_accuracy": without["balanced_accuracy"],
            "raw_features_without_attribute_std": without["std"],
            "raw_features_without_attribute_interval": without["interval"],
            "raw_features_without_attribute_readable": without["readable"],
            "raw_features_without_attribute_n_dropped": without["n_dropped"],
            "raw_features_without_attribute_note": without["note"]}


# ----------------------------------------------------------------------------- CKA


def linear_cka(X: Any, Y: Any) -> float:
    """Linear centred kernel alignment of two representations of the same n rows.

    Kornblith et al. (2019), feature-space form: with column-centred X_c (n, k1), Y_c (n, k2),

        CKA(X, Y) = ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F * ||Y_c^T Y_c||_F)

    in [0, 1]; 1 when Y is an orthogonal transform of X times a scalar (plus a shift).
    Invariant to orthogonal rotation and isotropic scaling, not to arbitrary linear maps.
    Computed in float64 in O(n k^2). This is the plain (biased) estimator: for independent
    representations it is about sqrt(k1 k2) / n rather than 0, so compare groups of
    similar size, with n well above k. NaN when either representation is constant.
    """
    x = _as_matrix(X, "X").astype(np.float64)
    y = _as_matrix(Y, "Y", x.shape[0]).astype(np.float64)
    if x.shape[0] < 2:
        raise InputError("CKA needs at least 2 rows", "pass more rows")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    denominator = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    if denominator == 0.0:
        return float("nan")
    return float(cross / denominator)


def _or_none(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def per_group_cka(X: Any, Y: Any, groups: Any) -> dict[str, Any]:
    """Linear CKA between X and Y overall and within each group's rows.

    Centring is within the group, so a group's CKA says whether the two encoders arrange
    *that group's* rows alike, not whether they place the group at the same spot.

    Returns {"overall": float | None, "groups": [{"group", "n", "cka"}]} sorted by group;
    `cka` is None for a group with fewer than 2 rows or constant embeddings.
    """
    x = _as_matrix(X, "X")
    y = _as_matrix(Y, "Y", x.shape[0])
    labels = _as_groups(groups, "groups", x.shape[0])
    records = []
    for group in np.unique(labels):
        rows = labels == group
        n = int(rows.sum())
        value = linear_cka(x[rows], y[rows]) if n >= 2 else float("nan")
        records.append({"group": str(group), "n": n, "cka": _or_none(value)})
    return {"overall": _or_none(linear_cka(x, y)), "groups": records}
