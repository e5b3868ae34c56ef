"""Representation audit: leakage probe, CKA, per-group kNN, UMAP projection and subsample."""

from __future__ import annotations

import os
from pathlib import Path

# umap-learn compiles with numba on first use; reuse the project's cache as `make test` does.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[2] / ".cache/numba"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from core.audit.representation import (  # noqa: E402
    attribute_leakage,
    beside_raw_features,
    exact_neighbours,
    fold_interval,
    linear_cka,
    per_group_cka,
    probe_reads_attribute,
    project_umap,
    raw_feature_leakage,
    stratified_subsample,
)
from core.audit.knn import knn_accuracy_by_group  # noqa: E402
from core.data.features import TabularEncoder  # noqa: E402
from core.errors import InputError  # noqa: E402


def _groups(n: int, seed: int, names=("a", "b", "c"), p=(0.6, 0.3, 0.1)) -> np.ndarray:
    return np.random.default_rng(seed).choice(list(names), size=n, p=list(p)).astype(object)


# ----------------------------------------------------------------------------- leakage


def test_planted_leak_is_found():
    rng = np.random.default_rng(0)
    groups = _groups(600, 1)
    embeddings = rng.normal(size=(600, 16)).astype(np.float32)
    code = pd.factorize(pd.Series(groups), sort=True)[0]
    embeddings[:, 3] = code + 0.2 * rng.normal(size=600)  # one dimension encodes the group
    result = attribute_leakage(embeddings, groups)
    assert result["chance"] == pytest.approx(1 / 3)
    assert result["balanced_accuracy"] > 0.95
    assert result["n_splits"] == 5 and result["std"] >= 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_leak_scores_near_chance(seed):
    # 600 rows, two groups: the standard error of a balanced accuracy is about 0.5/sqrt(600)
    # = 0.02, so 0.08 is a four-standard-error margin around chance.
    rng = np.random.default_rng(seed)
    groups = _groups(600, seed + 10, names=("F", "M"), p=(0.4, 0.6))
    embeddings = rng.normal(size=(600, 16)).astype(np.float32)
    result = attribute_leakage(embeddings, groups, random_state=seed)
    assert result["chance"] == 0.5
    assert abs(result["balanced_accuracy"] - 0.5) < 0.08


def test_raw_feature_probe_and_embedding_probe_side_by_side():
    # The pipeline probes the raw features and each model's embeddings with the same
    # attribute_leakage call (same folds) and reports the two next to each other.
    rng = np.random.default_rng(3)
    sensitive = pd.DataFrame(
        {"sex": _groups(500, 4, ("F", "M"), (0.5, 0.5)), "race": _groups(500, 5)}
    ).astype(str)
    embeddings = rng.normal(size=(500, 8)).astype(np.float32)
    raw = np.c_[rng.normal(size=(500, 5)), (sensitive["sex"] == "F").to_numpy(float)]
    model = {a: attribute_leakage(embeddings, sensitive[a]) for a in sensitive.columns}
    data = {a: attribute_leakage(raw, sensitive[a]) for a in sensitive.columns}
    assert data["sex"]["balanced_accuracy"] > 0.99  # the raw data holds sex
    assert abs(model["sex"]["balanced_accuracy"] - 0.5) < 0.1  # the embeddings do not
    assert model["race"]["chance"] == pytest.approx(1 / 3)
    again = attribute_leakage(embeddings, sensitive["sex"])
    assert again["balanced_accuracy"] == model["sex"]["balanced_accuracy"]  # same folds, same score


def test_small_groups_are_merged_or_left_out_never_a_crash():
    rng = np.random.default_rng(6)
    groups = _groups(400, 7, ("a", "b"), (0.5, 0.5))
    groups[:7], groups[7:10] = "tiny1", "tiny2"  # 7 + 3 rows: merged into one pool of 10
    embeddings = rng.normal(size=(400, 4))
    result = attribute_leakage(embeddings, groups)
    assert result["merged_groups"] == ["tiny1", "tiny2"]  # pooled as "(other)"
    assert result["n_groups"] == 3 and result["chance"] == pytest.approx(1 / 3)
    assert result["n_excluded"] == 0

    groups = _groups(400, 7, ("a", "b"), (0.5, 0.5))
    groups[:3] = "lonely"  # one group of 3 rows: too few for 5 folds, left out
    result = attribute_leakage(embeddings, groups)
    assert result["merged_groups"] == []
    assert result["excluded_groups"] == ["lonely"] and result["n_excluded"] == 3
    assert result["n_groups"] == 2 and result["n"] == 397
    assert result["balanced_accuracy"] is not None


def test_one_group_gives_undefined_leakage():
    result = attribute_leakage(np.zeros((50, 3)), np.array(["x"] * 50))
    assert result["balanced_accuracy"] is None and result["chance"] is None
    assert "undefined" in result["note"]
    assert result["interval"] is None and result["readable"] is None


def test_fold_interval_by_hand():
    """Scores 0.6, 0.7, 0.8, 0.7, 0.7: mean 0.7, sample sd sqrt(0.02 / 4) = 0.070711,
    t(0.975, 4) = 2.776445, half-width 2.776445 * 0.070711 / sqrt(5) = 0.087798."""
    low, high = fold_interval([0.6, 0.7, 0.8, 0.7, 0.7])
    assert (low, high) == (pytest.approx(0.7 - 0.087798, abs=1e-6), pytest.approx(0.7 + 0.087798, abs=1e-6))
    assert fold_interval([0.5]) is None
    assert probe_reads_attribute({"interval": [low, high], "chance": 0.5}) is True
    assert probe_reads_attribute({"interval": [0.45, 0.6], "chance": 0.5}) is False
    assert probe_reads_attribute({"interval": None, "chance": 0.5}) is None


def _planted_table(n: int, seed: int, proxy_strength: float | None) -> tuple[pd.DataFrame, np.ndarray]:
    """A table with the attribute itself as a column, two noise columns and, unless
    `proxy_strength` is None, a numeric proxy: the attribute's 0/1 code times the strength plus noise."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n, p=[0.4, 0.6])
    frame = pd.DataFrame({"sex": sex, "noise_a": rng.normal(size=n),
                          "noise_b": rng.choice(["x", "y", "z"], size=n)})
    if proxy_strength is not None:
        frame["proxy"] = proxy_strength * (sex == "F") + rng.normal(size=n)
    return frame, sex.astype(object)


def _encoded(frame: pd.DataFrame) -> TabularEncoder:
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    return TabularEncoder(numeric=numeric, categorical=[c for c in frame.columns if c not in numeric]).fit(frame)


def test_a_proxy_is_read_by_the_probe_without_the_attributes_own_columns():
    frame, sex = _planted_table(1000, 0, proxy_strength=2.0)
    encoder = _encoded(frame)
    own = encoder.column_slices_["sex"]
    assert own.stop - own.start == 2  # the one-hot block F, M
    result = raw_feature_leakage(encoder.transform(frame), sex, own)
    everything, without = result["all"], result["without_attribute"]
    assert everything["balanced_accuracy"] > 0.99 and everything["readable"] is True  # the column itself
    assert without["n_dropped"] == 2
    # The proxy alone: N(2, 1) vs N(0, 1) separates at Phi(1) = 0.84 balanced accuracy.
    assert 0.78 < without["balanced_accuracy"] < 0.9
    assert without["readable"] is True and without["interval"][0] > 0.5
    entry = beside_raw_features({"balanced_accuracy": 0.6}, result)
    assert entry["raw_features_without_attribute_balanced_accuracy"] == without["balanced_accuracy"]
    assert entry["raw_features_without_attribute_interval"] == without["interval"]
    assert entry["raw_features_balanced_accuracy"] == everything["balanced_accuracy"]
    assert entry["raw_features_without_attribute_n_dropped"] == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_a_proxy_the_probe_without_the_attribute_reads_chance(seed):
    frame, sex = _planted_table(1000, seed, proxy_strength=None)
    encoder = _encoded(frame)
    result = raw_feature_leakage(encoder.transform(frame), sex, encoder.column_slices_["sex"], random_state=seed)
    assert result["all"]["balanced_accuracy"] > 0.99
    without = result["without_attribute"]
    assert abs(without["balanced_accuracy"] - 0.5) < 0.06  # 4 standard errors (0.5 / sqrt(1000) = 0.016)
    assert without["readable"] is False  # "a linear probe cannot read it"


def test_an_attribute_that_is_no_feature_drops_nothing():
    frame, sex = _planted_table(400, 3, proxy_strength=2.0)
    frame = frame.drop(columns="sex")  # unaware: the attribute is not among the features
    encoder = _encoded(frame)
    result = raw_feature_leakage(encoder.transform(frame), sex, encoder.column_slices_.get("sex"))
    assert result["without_attribute"]["n_dropped"] == 0
    assert result["without_attribute"]["balanced_accuracy"] == result["all"]["balanced_accuracy"]
    only = raw_feature_leakage(encoder.transform(frame)[:, :1], sex, [0])  # the only column dropped
    assert only["without_attribute"]["balanced_accuracy"] is None and only["without_attribute"]["note"]


def test_leakage_rejects_mismatched_rows():
    with pytest.raises(InputError, match="50 group labels"):
        attribute_leakage(np.zeros((50, 3)), np.array(["x"] * 49))


# ----------------------------------------------------------------------------- CKA


def test_cka_of_a_representation_with_itself_is_one():
    x = np.random.default_rng(0).normal(size=(300, 12))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_invariant_to_rotation_isotropic_scaling_and_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12))  # correlated features
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert linear_cka(x, 7.5 * x @ q + 3.0) == pytest.approx(1.0, abs=1e-10)
    y = x[:, :6] + 0.5 * rng.normal(size=(300, 6))
    assert linear_cka(x @ q, y * 0.1) == pytest.approx(linear_cka(x, y), abs=1e-10)
    # ...but not to anisotropic scaling: the test can tell the difference.
    assert linear_cka(x, x * np.linspace(0.1, 3.0, 12)) < 0.99


def test_cka_of_independent_representations_is_near_zero():
    # Biased estimator: about sqrt(k1 k2) / n = 8 / 5000 for independent Gaussians.
    rng = np.random.default_rng(2)
    value = linear_cka(rng.normal(size=(5000, 8)), rng.normal(size=(5000, 8)))
    assert 0 <= value < 0.01


def test_cka_of_a_constant_representation_is_undefined():
    assert np.isnan(linear_cka(np.ones((20, 3)), np.random.default_rng(0).normal(size=(20, 3))))


def test_per_group_cka_separates_groups():
    rng = np.random.default_rng(3)
    groups = np.array(["same"] * 2000 + ["other"] * 2000, dtype=object)
    x = rng.normal(size=(4000, 4))
    y = x.copy()
    y[2000:] = rng.normal(size=(2000, 4))  # the second encoder scrambles group "other"
    result = per_group_cka(x, y, groups)
    by_group = {r["group"]: r for r in result["groups"]}
    assert by_group["same"]["cka"] == pytest.approx(1.0)
    assert by_group["other"]["cka"] < 0.02
    assert by_group["other"]["n"] == 2000
    assert 0.2 < result["overall"] < 0.9


# ----------------------------------------------------------------------------- kNN


def test_knn_accuracy_is_high_where_the_embedding_separates_labels():
    rng = np.random.default_rng(4)
    n = 800
    groups = np.where(np.arange(n) < 400, "served", "not served").astype(object)
    labels = rng.integers(0, 2, size=n)
    embeddings = rng.normal(size=(n, 4))
    served = groups == "served"
    embeddings[served, 1] += 10  # its own region, so its neighbours are its own rows
    embeddings[served, 0] += 6 * labels[served]  # labels far apart for one group only
    result = knn_accuracy_by_group(embeddings, labels, groups, k=10)
    by_group = {r["group"]: r["accuracy"] for r in result["groups"]}
    assert by_group["served"] > 0.95
    assert by_group["not served"] < 0.65
    assert result["overall"] == pytest.approx(np.mean(list(by_group.values())))
    again = knn_accuracy_by_group(embeddings, labels, groups, k=10)
    assert again == result


# ----------------------------------------------------------------------------- UMAP


def test_stratified_subsample_keeps_every_group():
    groups = np.array(["big"] * 9000 + ["mid"] * 900 + ["tiny"] * 12, dtype=object)
    index = stratified_subsample(groups, 1000, min_group_rows=100, random_state=0)
    assert len(index) == 1000
    assert np.all(np.diff(index) > 0)  # sorted, no duplicates
    kept = pd.Series(groups[index]).value_counts()
    assert kept["tiny"] == 12  # whole group under the floor is kept
    assert kept["mid"] >= 100  # floor, then a proportional share
    assert kept["big"] == 1000 - 12 - kept["mid"] and kept["big"] > 4 * kept["mid"]
    assert np.array_equal(index, stratified_subsample(groups, 1000, min_group_rows=100))
    assert np.array_equal(stratified_subsample(groups, 20_000), np.arange(len(groups)))


def test_exact_neighbours_put_each_row_first_even_with_duplicates():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    x[10] = x[11] = x[12]  # exact duplicates: each must still be its own first neighbour
    indices, distances = exact_neighbours(x, 5)
    assert indices.shape == distances.shape == (50, 5)
    assert indices.dtype == np.int32 and distances.dtype == np.float32
    assert np.array_equal(indices[:, 0], np.arange(50)) and np.all(distances[:, 0] == 0)
    full = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
    expected = np.sort(full, axis=1)[:, :5]
    assert np.allclose(distances, expected, atol=1e-5)
    assert set(indices[10, :3]) == {10, 11, 12}


def test_umap_shape_and_determinism():
    rng = np.random.default_rng(5)
    embeddings = rng.normal(size=(300, 8)).astype(np.float32)
    coords, index = project_umap(embeddings, random_state=0)
    assert coords.shape == (300, 2) and coords.dtype == np.float32
    assert np.array_equal(index, np.arange(300))
    assert np.all(np.isfinite(coords))
    again, _ = project_umap(embeddings, random_state=0)
    assert np.array_equal(coords, again)
    other, _ = project_umap(embeddings, random_state=1)
    assert not np.allclose(coords, other)


def test_umap_subsample_above_max_rows_keeps_every_group():
    rng = np.random.default_rng(6)
    strata = np.array(["x"] * 1100 + ["y"] * 90 + ["z"] * 10, dtype=object)
    embeddings = rng.normal(size=(1200, 6)).astype(np.float32)
    coords, index = project_umap(
        embeddings, random_state=0, max_rows=400, strata=strata, min_group_rows=50
    )
    assert coords.shape == (400, 2) and index.shape == (400,)
    assert set(strata[index]) == {"x", "y", "z"}
    assert (strata[index] == "z").sum() == 10


def test_umap_rejects_bad_input():
    with pytest.raises(InputError, match="NaN"):
        project_umap(np.full((10, 2), np.nan))
    with pytest.raises(InputError, match="2-D"):
        project_umap(np.zeros(10))
    with pytest.raises(InputError, match="neighbours"):
        project_umap(np.zeros((10, 2)), neighbours="fast")


def test_umap_approximate_neighbours_path_runs():
    # Below 4,096 rows umap-learn computes its own exact distances (no NN-descent compile).
    embeddings = np.random.default_rng(8).normal(size=(120, 5)).astype(np.float32)
    coords, index = project_umap(embeddings, neighbours="approximate")
    assert coords.shape == (120, 2) and np.all(np.isfinite(coords))
    assert np.array_equal(coords, project_umap(embeddings, neighbours="approximate")[0])


UMAP_IN_A_FRESH_PROCESS = """
import json, sys
import numpy as np
import umap.umap_ as umap_
from core.audit.representation import project_umap
x = np.random.default_rng(3).normal(size=(120, 16)).astype(np.float32)
coords, _ = project_umap(x, random_state=0)
np.save(sys.argv[1], coords)
stats = umap_.smooth_knn_dist.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


def test_umap_kernels_compiled_in_one_process_are_loaded_by_the_next_with_identical_coordinates(tmp_path):
    """umap-learn's kernels declare no numba cache, so each audit worker compiled them again
    (7-10 s a process); core.audit.umap_cache turns the cache on. This process projects (compiling
    the kernels and storing them, or loading what an earlier process stored); a fresh process then
    loads them from the cache, compiles nothing, and draws the very same map."""
    import json
    import subprocess
    import sys

    import numba

    x = np.random.default_rng(3).normal(size=(120, 16)).astype(np.float32)
    here, _ = project_umap(x, random_state=0)
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(numba.config.CACHE_DIR))  # the cache this process used
    out = subprocess.run([sys.executable, "-c", UMAP_IN_A_FRESH_PROCESS, str(tmp_path / "fresh.npy")], cwd=root,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"hits": 1, "misses": 0}  # loaded, not compiled
    assert np.array_equal(np.load(tmp_path / "fresh.npy"), here)
