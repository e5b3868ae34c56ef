"""Equiscope's engine: data, self-supervised training, fairness audit. Never imports the UI."""

import os
from pathlib import Path

__version__ = "0.1.0"

# UMAP (numba) compiles on first use in every process; a persistent cache turns ~15 s of
# compiling into ~1 s. Set before anything imports numba; an explicit setting wins.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "equiscope" / "numba"))
