"""The settings of a federated pretraining and their limits, checked (light: no numpy, no torch).

AuditConfig's validation and the CLI's --help read these without loading numpy or torch, as
core.learning.pretrain_config does for pretraining (core.run.config's docstring).
"""

from __future__ import annotations

from core.errors import InputError

#: The server's aggregation rules offered (flwr.serverapp.strategy's FedAvg).
FEDERATED_STRATEGIES = ("fedavg",)
#: Fewest sites that make a federation (one site is central training), most that a review can read.
MIN_SITES, MAX_SITES = 2, 20
#: Pretraining rows a site needs: a few full batches of local steps, and a site a reviewer
#: would call one (smaller sites are usually a mis-typed value; merge them into a larger one).
MIN_SITE_ROWS = 50


def check_federated_settings(rounds: int, local_epochs: int, strategy: str) -> None:
    """InputError for settings a federated pretraining cannot run with."""
    if int(rounds) < 1:
        raise InputError(f"Federated rounds must be 1 or more, got {rounds}", "Use --federated-rounds 5")
    if int(local_epochs) < 1:
        raise InputError(f"Federated local epochs must be 1 or more, got {local_epochs}",
                         "Use --federated-local-epochs 1")
    if strategy not in FEDERATED_STRATEGIES:
        raise InputError(f"Unknown federated strategy '{strategy}'", f"Choose from: {', '.join(FEDERATED_STRATEGIES)}")
