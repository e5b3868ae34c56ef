"""Registry of self-supervised pretraining objectives.

    METHODS                      name -> Objective subclass
    method_names()               the registry names, in a stable order
    method_defaults(name)        the published defaults of one objective
    make_objective(name, encoder_config, layout, **params) -> Objective

Each objective's formula and paper are in its module: contrastive (scarf, simclr),
reconstruction (vime, dae), self_distillation (byol, simsiam), redundancy (vicreg, barlow),
clustering (swav), momentum_contrast (moco), variational (vae), deep_cluster (deepcluster). docs/ssl.md summarises them.
"""

from __future__ import annotations

from typing import Any

from core.errors import InputError
from core.learning.models import EncoderConfig
from core.learning.ssl.base import Objective
from core.learning.ssl.clustering import SwAV
from core.learning.ssl.contrastive import Scarf, SimCLR
from core.learning.ssl.deep_cluster import DeepCluster
from core.learning.ssl.momentum_contrast import MoCo
from core.learning.ssl.reconstruction import DenoisingAutoencoder, Vime
from core.learning.ssl.redundancy import BarlowTwins, VICReg
from core.learning.ssl.self_distillation import Byol, SimSiam
from core.learning.ssl.variational import VariationalAutoencoder
from core.learning.ssl.views import FeatureLayout

METHODS: dict[str, type[Objective]] = {cls.name: cls for cls in (
    Scarf, Vime, DenoisingAutoencoder, SimCLR, Byol, SimSiam, VICReg, BarlowTwins, SwAV, MoCo,
    VariationalAutoencoder, DeepCluster)}


def method_names() -> list[str]:
    return list(METHODS)


def get_method(name: str) -> type[Objective]:
    if name not in METHODS:
        raise InputError(f"unknown pretraining method '{name}'",
                         f"Choose one of: {', '.join(METHODS)}")
    return METHODS[name]


def method_defaults(name: str) -> dict[str, Any]:
    return dict(get_method(name).defaults)


def make_objective(name: str, encoder_config: EncoderConfig, layout: FeatureLayout,
                   **params: Any) -> Objective:
    return get_method(name)(encoder_config, layout, **params)


__all__ = ["METHODS", "FeatureLayout", "Objective", "get_method", "make_objective",
           "method_defaults", "method_names"]
