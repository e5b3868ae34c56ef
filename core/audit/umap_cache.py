"""numba's on-disk cache for umap-learn's compiled kernels (used by core.audit.representation)."""

from __future__ import annotations

import importlib

#: umap-learn's and pynndescent's modules whose numba kernels `cache_umap_kernels` caches on disk.
UMAP_KERNEL_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.distances", "umap.sparse",
                       "pynndescent.pynndescent_", "pynndescent.utils", "pynndescent.distances",
                       "pynndescent.rp_trees", "pynndescent.sparse", "pynndescent.search")


def cache_umap_kernels() -> int:
    """Let numba keep umap-learn's compiled kernels on disk; returns how many it newly caches.

    umap-learn declares its kernels (`smooth_knn_dist`, `compute_membership_strengths`, the layout
    epoch) without numba's `cache=True`, so every process compiled them again: 7-10 s of CPU on
    the exact-neighbour path, in each audit's worker processes, for a German audit whose training
    took 4 s. `Dispatcher.enable_caching()` is what `cache=True` calls; done before the first
    call, later processes load the machine code from NUMBA_CACHE_DIR in ~0.01 s (the same code:
    coordinates are bit-identical, tests/unit/test_representation.py). pynndescent's
    `nn_descent` (the approximate path, above EXACT_NEIGHBOURS_MAX_ROWS) takes its distance as a
    function argument, which numba cannot cache: it still compiles in each process.
    """
    from numba.core.caching import NullCache  # noqa: PLC0415 - numba is loaded with umap, not before
    from numba.core.dispatcher import Dispatcher  # noqa: PLC0415

    newly = 0
    for name in UMAP_KERNEL_MODULES:
        module = importlib.import_module(name)
        for kernel in vars(module).values():
            if (isinstance(kernel, Dispatcher) and kernel.py_func.__module__ == name
                    and isinstance(kernel._cache, NullCache)):
                kernel.enable_caching()
                newly += 1
    return newly
