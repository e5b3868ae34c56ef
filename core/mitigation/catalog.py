"""The mitigations an audit can add, by name: what each does in one line, what kind it is, and
how long it roughly takes. Light on purpose (no numpy, no fairlearn, no torch): the CLI's
`--help`, `equiscope mitigations` and the Train page read it.

Each mitigation becomes one or more variants of a trained model (core.run.variants): fitted
once per replicate, audited like every model, compared with the model it changes (its base).
kind "fairlearn": fairlearn's reductions, pre- or post-processing around a model; kind
"training": debiasing inside Equiscope's own fine-tuning or pretraining.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError

FAIRLEARN, TRAINING = "fairlearn", "training"


@dataclass(frozen=True)
class Mitigation:
    name: str
    kind: str  # FAIRLEARN or TRAINING
    summary: str  # one plain line for a reviewer
    cost: str  # expected time, relative to the model it changes


CATALOG: tuple[Mitigation, ...] = (
    Mitigation("eg-demographic-parity", FAIRLEARN,
               "fairlearn ExponentiatedGradient: a logistic regression constrained to equal selection rates "
               "across groups", "about 10-50 fits of its base model"),
    Mitigation("eg-equalized-odds", FAIRLEARN,
               "fairlearn ExponentiatedGradient: a logistic regression constrained to equal true- and "
               "false-positive rates across groups", "about 10-50 fits of its base model"),
    Mitigation("eg-tpr-parity", FAIRLEARN,
               "fairlearn ExponentiatedGradient: a logistic regression constrained to equal true-positive rates "
               "across groups", "about 10-50 fits of its base model"),
    Mitigation("eg-embedding-equalized-odds", FAIRLEARN,
               "ExponentiatedGradient with equalized odds over the frozen SSL embedding instead of the raw "
               "features", "about 10-50 logistic-regression fits"),
    Mitigation("correlation-remover", FAIRLEARN,
               "fairlearn CorrelationRemover: removes the features' linear correlation with the sensitive "
               "attribute before a logistic regression", "one fit of its base model"),
    Mitigation("threshold-optimizer", FAIRLEARN,
               "fairlearn ThresholdOptimizer: group-specific thresholds on a model's scores for equalized odds, "
               "fitted on the validation rows; it reads each person's sensitive attribute when deciding, which some "
               "laws forbid (ask before deploying it)", "seconds"),
    Mitigation("fairness-penalty", TRAINING,
               "fine-tuning with a penalty on the between-group difference of the chosen gap, weight lambda",
               "one fine-tuning per lambda"),
    Mitigation("adversarial", TRAINING,
               "fine-tuning with an adversary that tries to read the sensitive attribute from the representation "
               "(gradient reversal)", "about 1.5 fine-tunings"),
    Mitigation("pruning", TRAINING,
               "magnitude pruning of the pretrained encoder at several sparsities, fine-tuned after pruning",
               "one fine-tuning per sparsity"),
    Mitigation("wide-shallow", TRAINING,
               "a wider, shallower encoder pretrained and fine-tuned like the default one", "one pretraining and "
               "one fine-tuning"),
)

MITIGATIONS: dict[str, Mitigation] = {m.name: m for m in CATALOG}


def parse_mitigations(text: str | None) -> list[str]:
    """`--mitigations` as a list of names: '' or 'none' -> [], 'all' -> every one; an unknown name is refused."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if names in ([], ["none"]):
        return []
    if names == ["all"]:
        return list(MITIGATIONS)
    check_mitigations(names)
    return names


def check_mitigations(names: list[str]) -> None:
    unknown = [n for n in names if n not in MITIGATIONS]
    if unknown or len(set(names)) != len(names):
        raise InputError(f"Unknown or repeated mitigation '{(unknown or names)[0]}'",
                         "Run 'equiscope mitigations' for the list, or give all or none")
