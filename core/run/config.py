"""AuditConfig: every knob of one audit, its validation, and how it reaches the training configs.

Light on purpose (no numpy, no torch at import): `equiscope audit --help` and the dashboard's
Train page read the defaults from here. Stored with each run (workspace and report.json's
`config`), so `from_dict` also reads the keys of runs stored by earlier versions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from core.errors import InputError
from core.learning.federated_config import check_federated_settings
from core.learning.pretrain_config import PRECISIONS
from core.mitigation.catalog import check_mitigations
from core.vocabulary import BASELINES, STRATEGIES

if TYPE_CHECKING:
    from core.data import DatasetSpec

DEVICES = ("auto", "cpu", "cuda")

#: Keys that earlier versions stored under another name: old -> new.
RENAMED_KEYS = {"patience": "finetune_patience"}


@dataclass
class AuditConfig:
    """Every knob of one audit; JSON-able (it is stored with the run and in the report)."""

    data: str
    target: str
    sensitive: list[str]
    positive: str | None = None
    features: list[str] | None = None
    include_pii: bool = False
    unaware: bool = False  # sensitive attributes kept out of the features (DatasetSpec.unaware)
    method: str = "scarf"
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    # Classical baselines fitted beside the MLPs (core.learning.classical); [] for none.
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    label_fraction: float = 1.0
    epochs: int = 10
    finetune_epochs: int = 20
    # Early stopping: epochs without a better validation loss before training stops.
    finetune_patience: int = 5  # each fine-tuning strategy and the supervised baseline (FinetuneConfig.patience)
    pretrain_patience: int = 5  # SSL pretraining, 0: never (PretrainConfig.patience; the same default, tested)
    batch_size: int = 512
    encoder: dict[str, Any] = field(default_factory=dict)
    method_params: dict[str, Any] = field(default_factory=dict)
    n_boot: int = 1000
    confidence: float = 0.95
    min_group_size: int = 30
    min_class_rows: int = 10  # positives (negatives) a group needs to enter the headline TPR (FPR) gaps
    umap: bool = True
    seed: int = 0
    # Independent trainings of every recipe (seeds: `replicate_seeds`); the verdicts cover
    # training randomness only from 2 (docs/interfaces.md, issue 14). 1 trains today's models.
    replicates: int = 5
    workers: int = 0  # processes for fine-tuning and auditing the models; 0: automatic (`workers_for`)
    threads: int = 1  # torch CPU threads for pretraining and fine-tuning (docs/decisions.md: why 1)
    # Where and in what arithmetic the models train (core.learning.precision): "auto" is CUDA
    # where present, and bfloat16 where the device computes it natively; CPU + fp32 elsewhere.
    device: str = "auto"
    precision: str = "auto"
    # Each recipe's replicates trained as one batched model (core.run.training): "auto" on CUDA only.
    batch_replicates: str = "auto"
    # What the positive outcome does to the person (issue 17): "helps" (a loan, a release), "harms"
    # (a denial, an arrest flag) or None; the report then says who each gap favours.
    outcome_effect: str | None = None
    # An outside model file audited beside the trained models on the same rows (core.learning.outside,
    # issue 16), and the skops types its reviewer accepted by name.
    model: str | None = None
    trust_types: list[str] = field(default_factory=list)
    # Mitigations added as variants of the trained models (core.mitigation.catalog, issue 18); [] for none.
    mitigations: list[str] = field(default_factory=list)
    # Differentially private versions of the supervised baseline and of the full fine-tuning, one per
    # target epsilon (core.run.private_models, issue 19); delta None: 1 / the labelled training rows.
    dp_epsilon: list[float] = field(default_factory=list)
    dp_delta: float | None = None
    dp_max_grad_norm: float = 1.0
    # Federated SSL pretraining by a column's sites (core.learning.federated, issue 19): "{method}-fed+{strategy}"
    # variants beside the central models; None for none. Rounds x local epochs are each site's passes.
    federated_by: str | None = None
    federated_rounds: int = 5
    federated_local_epochs: int = 1
    federated_strategy: str = "fedavg"
    # Each fairlearn reduction at several constraint bounds (core.run.mitigation_models.SWEEP_EPS), drawn as curves.
    mitigation_sweep: bool = False

    def validate(self) -> None:
        # Imported here: the SSL registry loads torch, and this module must stay light (docstring).
        from core.learning.ssl import get_method

        get_method(self.method)
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise InputError(f"Unknown strategy '{unknown[0]}'", f"Choose from: {', '.join(STRATEGIES)}")
        if not self.strategies:
            raise InputError("No fine-tuning strategy chosen", f"Choose from: {', '.join(STRATEGIES)}")
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown or len(set(self.baselines)) != len(self.baselines):
            raise InputError(f"Unknown or repeated baseline '{(unknown or self.baselines)[0]}'",
                             f"Choose from: {', '.join(BASELINES)}, or none")
        if int(self.epochs) < 1 or int(self.finetune_epochs) < 1:
            raise InputError(f"Epochs must be at least 1, got {self.epochs}", "Use --epochs 1 or more")
        if not 0 < float(self.label_fraction) <= 1:
            raise InputError(f"Label fraction {self.label_fraction} is outside (0, 1]",
                             "Give a fraction such as 0.1 for 10% of the labels, or 1 for all")
        if int(self.replicates) < 1:
            raise InputError(f"Replicates must be 1 or more, got {self.replicates}",
                             "Use 5 for verdicts that survive a re-run, 1 for a first look")
        if int(self.threads) < 1:
            raise InputError(f"Threads must be 1 or more, got {self.threads}", "Use 1")
        if int(self.workers) < 0:
            raise InputError(f"Workers must be 0 (one per core) or more, got {self.workers}", "Use 0")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise InputError(f"Unknown device '{self.device}'", f"Choose from: {', '.join(DEVICES)}")
        if self.outcome_effect not in (None, "helps", "harms"):
            raise InputError(f"Unknown outcome effect '{self.outcome_effect}'", "Use helps or harms")
        if self.batch_replicates not in ("auto", "on", "off"):
            raise InputError(f"Unknown batch_replicates '{self.batch_replicates}'", "Use auto, on or off")
        if self.precision not in PRECISIONS:
            raise InputError(f"Unknown precision '{self.precision}'", f"Choose from: {', '.join(PRECISIONS)}")
        check_mitigations(list(self.mitigations))
        check_privacy(self.dp_epsilon, self.dp_delta, self.dp_max_grad_norm)
        if self.federated_by:  # the column itself is checked against the table (core.run.federated_models)
            check_federated_settings(self.federated_rounds, self.federated_local_epochs, self.federated_strategy)
        if not self.sensitive:
            raise InputError("No sensitive attribute chosen", "Give --sensitive, e.g. --sensitive sex,race")

    @property
    def replicate_seeds(self) -> list[int]:
        return replicate_seeds(self.seed, self.replicates)

    def spec(self) -> DatasetSpec:
        from core.data import DatasetSpec  # here, not at the top: it loads pandas (the docstring)

        return DatasetSpec(target=self.target, sensitive=tuple(self.sensitive), positive_label=self.positive,
                           features=None if self.features is None else tuple(self.features),
                           include_pii=self.include_pii, min_group_size=self.min_group_size,
                           unaware=self.unaware)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditConfig:
        """The config of a stored run; keys of earlier versions (RENAMED_KEYS) are read under
        their new names, unknown keys are ignored."""
        values = {RENAMED_KEYS[k]: v for k, v in data.items() if k in RENAMED_KEYS}
        values |= {k: v for k, v in data.items() if k not in RENAMED_KEYS}  # a new key wins over its old name
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def check_privacy(epsilons: list[float], delta: float | None, max_grad_norm: float) -> None:
    """Every target epsilon > 0 (and no repeats), delta in (0, 1), clipping norm > 0 (issue 19)."""
    bad = [e for e in epsilons if not isinstance(e, (int, float)) or not float(e) > 0]
    if bad or len(set(map(float, epsilons))) != len(epsilons):
        raise InputError(f"Privacy epsilon must be above 0 and not repeated, got {(bad or epsilons)[0]}",
                         "Use values such as --dp-epsilon 1,3,8 (smaller is more private)")
    if delta is not None and not 0 < float(delta) < 1:
        raise InputError(f"Privacy delta must lie in (0, 1), got {delta}",
                         "Leave --dp-delta out for 1 / (number of labelled training rows)")
    if not float(max_grad_norm) > 0:
        raise InputError(f"The clipping norm must be above 0, got {max_grad_norm}", "Use --dp-max-grad-norm 1.0")


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """The seed of each training replicate: replicate 0 is the study seed itself (so one
    replicate trains exactly the models of earlier versions), replicate r >= 1 draws its seed
    from numpy's SeedSequence([seed, r]) (independent streams, the same on every machine)."""
    import numpy as np  # here, not at the top: the module stays light (the docstring)

    return [int(seed)] + [int(np.random.SeedSequence([int(seed), r]).generate_state(1)[0])
                          for r in range(1, int(replicates))]
