"""Sites of a federated pretraining: which pretraining rows each site holds, and whether the
column that names them makes a federation worth simulating.

Without torch or flwr (numpy and pandas only): the audit checks a column right after the study
is made, before any training, so bad input stops in seconds (core.run.federated_models); the
limits are core.learning.federated_config's.

A site is one distinct value of the column among the pretraining rows (core.data.split: train
rows and the unlabelled pool). A missing value is its own site, MISSING_SITE: a row with no
recorded site still lives somewhere, and dropping it would change the pretraining rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.errors import InputError
from core.learning.federated_config import MAX_SITES, MIN_SITE_ROWS, MIN_SITES

#: The site of rows whose column is empty.
MISSING_SITE = "(missing)"


def site_labels(values: pd.Series | Sequence) -> np.ndarray:
    """Each row's site as text (object array); missing values become MISSING_SITE."""
    series = pd.Series(values).reset_index(drop=True)
    return np.where(series.isna().to_numpy(), MISSING_SITE, series.astype(str).to_numpy()).astype(object)


def rows_per_site(sites: np.ndarray) -> dict[str, int]:
    """{site: number of rows}, sites in sorted order (the order of the Flower clients)."""
    names, counts = np.unique(np.asarray(sites, dtype=str), return_counts=True)
    return {str(name): int(count) for name, count in zip(names, counts)}


def check_sites(sites: np.ndarray, column: str, min_sites: int = MIN_SITES) -> dict[str, int]:
    """The rows per site of the pretraining rows' `sites`, or InputError when the column does
    not make min_sites..MAX_SITES sites of at least MIN_SITE_ROWS rows each (min_sites 1: the
    learning floor may federate one site, which replays central pretraining)."""
    counts = rows_per_site(sites)
    if len(counts) < min_sites:
        raise InputError(f"--federated-by '{column}' has {len(counts)} site among the pretraining rows; "
                         f"a federation needs {min_sites} or more",
                         "Choose a column with a few values (a region, a hospital, a branch)")
    if len(counts) > MAX_SITES:
        raise InputError(f"--federated-by '{column}' has {len(counts)} distinct values; at most {MAX_SITES} "
                         "sites are simulated", "Choose a column with fewer values, or group its values first")
    small = {site: n for site, n in counts.items() if n < MIN_SITE_ROWS}
    if small:
        listed = ", ".join(f"'{site}' ({n})" for site, n in list(small.items())[:3])
        which = f"site {listed} has" if len(small) == 1 else f"sites {listed} have"
        raise InputError(f"--federated-by '{column}': {which} fewer than {MIN_SITE_ROWS} pretraining rows",
                         "Merge small sites into larger ones, or choose another column")
    return counts
