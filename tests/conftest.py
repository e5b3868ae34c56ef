"""Shared test set-up: one torch thread (reproducible numbers, and other work shares the
machine), the tests' job kinds, and a synthetic encoded table with known structure for the SSL
engine tests."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import jobkinds
from core.workspace import jobs

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _main_module_kept():
    """Put pytest's `__main__` back after each test. AppTest runs dashboard/app.py as
    `__main__` and leaves it there; processes started later with "spawn" (core.run.parallel's
    workers, the store's two-writer test) re-run the parent's `__main__` file, and would run
    the dashboard app instead of nothing."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture
def test_job_kinds(monkeypatch):
    """The tests' job kinds (tests/jobkinds.py: "diagnostic") known to `submit` and the worker,
    in this process and in a worker that `submit` starts."""
    for kind, target in jobkinds.TEST_JOB_KINDS.items():
        monkeypatch.setitem(jobs.JOB_KINDS, kind, target)
    monkeypatch.setattr(jobs, "WORKER_MODULE", jobkinds.WORKER_MODULE)


def make_synthetic_table(n: int = 1500, seed: int = 0) -> dict:
    """An encoded table driven by a latent 2-d mixture of 6 clusters on a circle.

    Columns: 6 linear numerics of z, tanh(z_1), z_1 z_2 (+ noise), one numeric column with
    10% missing values (value + missing indicator), a 4-category column that depends on z
    and a 3-category column of pure noise, one-hot encoded (blocks of 4 and 3 features).
    Label y = cluster % 2: alternating clusters, so not linear in the raw features.
    Returns X (n, d) float32, y, cluster, and the layout arrays.
    """
    rng = np.random.default_rng(seed)
    angles = np.arange(6) * np.pi / 3
    centers = 2.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    cluster = rng.integers(0, 6, n)
    z = centers[cluster] + 0.5 * rng.standard_normal((n, 2))
    a = rng.standard_normal((2, 6))
    numerics = [z @ a + 0.3 * rng.standard_normal((n, 6)),
                np.tanh(z[:, :1]) + 0.1 * rng.standard_normal((n, 1)),
                z[:, :1] * z[:, 1:] / 3 + 0.3 * rng.standard_normal((n, 1))]
    num = np.concatenate(numerics, axis=1)
    missing = rng.random(n) < 0.1
    with_missing = np.where(missing, 0.0, z[:, 1] + 0.3 * rng.standard_normal(n))
    logits = z @ rng.standard_normal((2, 4)) + rng.gumbel(size=(n, 4))
    cat_a = np.eye(4)[logits.argmax(axis=1)]
    cat_b = np.eye(3)[rng.integers(0, 3, n)]
    num = (num - num.mean(0)) / num.std(0)
    with_missing = (with_missing - with_missing.mean()) / with_missing.std()
    X = np.column_stack([num, with_missing, missing, cat_a, cat_b]).astype(np.float32)
    column = [*range(8), 8, 8, *[9] * 4, *[10] * 3]
    is_numeric = [True] * 9 + [False] * 8
    return {"X": X, "y": (cluster % 2).astype(np.int64), "cluster": cluster,
            "column_of_feature": np.asarray(column), "is_numeric": np.asarray(is_numeric)}


@pytest.fixture(scope="session")
def synthetic_table() -> dict:
    return make_synthetic_table()
