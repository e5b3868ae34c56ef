"""Plain words for what ethicists read first: model labels, who is favoured by a gap, verdicts.

Code names (scarf+bn-affine), layer names (BatchNorm) and metric names (false-positive rate)
stay in the appendix, the downloads and the hover titles; the scorecard, the summary's first
lines and the model card use the words here (issue 17, items 3 and 6). Three rules:

- A model is named by what it is: "Ordinary model" for the supervised baseline, "Pretrained
  (SCARF), output layer only" for scarf+linear, "Logistic regression" for a classical baseline.
- A gap is phrased as who gets the outcome more often: "people in group X who truly were not
  “released” were predicted “released” more often than in group Y". With the study's
  `outcome_effect` ("helps": the outcome is good for the person, a loan or a release; "harms":
  a denial or an arrest flag) the sentence ends with who is favoured: when the outcome helps,
  the group that gets it more often is favoured; when it harms, the group that gets it less often.
- A comparison's verdict (`comparison_verdict`) follows the family-adjusted test and the
  practical floor (core.audit.multiplicity.PRACTICAL_FLOOR): a difference below the floor is
  "too small to matter", never "narrowed" or "widened".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.audit.multiplicity import PRACTICAL_FLOOR, clears_floor
from core.results.formatting import ci_includes_zero, fmt_num, fmt_pct, is_number
from core.vocabulary import SUPERVISED

#: What the positive outcome does to the person it is given to (set once per study).
OUTCOME_EFFECTS = ("helps", "harms")
OUTCOME_EFFECT_WORDS = {"helps": "helps the person (for example a loan granted, a release)",
                        "harms": "harms the person (for example a loan denied, an arrest flag)"}

METHOD_LABELS = {"scarf": "SCARF", "simclr": "SimCLR", "byol": "BYOL", "simsiam": "SimSiam", "vicreg": "VICReg",
                 "barlow_twins": "Barlow Twins", "barlow": "Barlow Twins", "vime": "VIME", "dae": "denoising",
                 "swav": "SwAV", "moco": "MoCo", "vae": "variational autoencoder",
                 "deepcluster": "DeepCluster"}
STRATEGY_LABELS = {"linear": "output layer only", "bn-stats": "output layer and normalisation statistics",
                   "bn-affine": "output layer and normalisation layers", "gradual": "all layers, step by step",
                   "full": "all layers retrained"}
CLASSICAL_LABELS = {"logistic-regression": "Logistic regression", "gradient-boosting": "Gradient boosting"}
#: The plain names of the headline measures (the appendix keeps core.vocabulary's GAP_NAMES).
MEASURE_LABELS = {"equalized_odds_difference": "errors in either direction",
                  "demographic_parity_difference": "how often each group gets the outcome",
                  "equal_opportunity_difference": "missed deserving cases",
                  "fpr_difference": "wrongly given the outcome",
                  "accuracy_difference": "how often the model is right"}


def model_label(entry: Mapping[str, Any]) -> str:
    """A model's plain name from its report.json entry (name, pretraining, strategy)."""
    name, pretraining, strategy = entry.get("name") or "", entry.get("pretraining"), entry.get("strategy")
    base = str(entry.get("base") or "")
    if entry.get("mitigation") and name.startswith(f"{base}+"):  # a mitigation: its base's label and the change
        base_pretraining, _, base_strategy = base.rpartition("+")
        return f"{model_label({'name': base, 'pretraining': base_pretraining or None, 'strategy': base_strategy})}" \
               f" + {name[len(base) + 1:]}"
    privacy = entry.get("privacy") or {}
    if base and is_number(privacy.get("epsilon")):  # a differentially private version (issue 19)
        return f"{model_label({'name': base, 'pretraining': pretraining, 'strategy': strategy})}, " \
               f"private ({epsilon_words(privacy)})"
    if name == SUPERVISED:
        return "Ordinary model (no pretraining)"
    if strategy == "classical" or name in CLASSICAL_LABELS:
        return CLASSICAL_LABELS.get(name, name.replace("-", " ").capitalize())
    if strategy == "uploaded":
        return f"{name} (uploaded predictions)"
    if pretraining:
        central = str(pretraining).removesuffix("-fed")  # "scarf-fed": pretrained federated (issue 19)
        method = METHOD_LABELS.get(central, central) + (", federated" if central != str(pretraining) else "")
        return f"Pretrained ({method}), {STRATEGY_LABELS.get(str(strategy), str(strategy))}"
    return name


def epsilon_words(privacy: Mapping[str, Any]) -> str:
    """"epsilon 3": a private model's target epsilon (the accountant's spent one is at most it)."""
    return f"epsilon {float(privacy.get('target_epsilon', privacy.get('epsilon'))):g}"


#: A model's code name inside a sentence: "scarf+bn-affine" (pretraining + strategy) or "supervised".
_CODE_NAME = re.compile(r"\b([a-z_]+(?:-fed)?)\+([a-z-]+)\b|\bsupervised\b")


def plain_names(text: str) -> str:
    """`text` with every model code name replaced by its plain label ("Fine-tuned scarf+full" ->
    "Fine-tuned Pretrained (SCARF), all layers retrained"): for the live progress messages, which
    the engine writes with code names."""
    def label(found: re.Match) -> str:
        if found.group(1) is None:
            return model_label({"name": SUPERVISED})
        return model_label({"name": found.group(0), "pretraining": found.group(1), "strategy": found.group(2)})

    return _CODE_NAME.sub(label, text)


def model_title(entry: Mapping[str, Any]) -> str:
    """The hover text of a plain label: the code name the appendix and the downloads use."""
    return f"code name: {entry.get('name')}"


def _quoted(value: Any) -> str:
    return f"\u201c{value}\u201d"


def who_gets_more(metric: str, high: Any, low: Any, positive: Any) -> str:
    """"people in group “X” who truly were not “P” were predicted “P” more often than in group “Y”"."""
    label = _quoted(positive) if positive not in (None, "") else "the outcome"
    if metric == "tpr":
        return (f"people in group {_quoted(high)} who truly were {label} were predicted {label} more often than "
                f"in group {_quoted(low)}")
    if metric == "fpr":
        return (f"people in group {_quoted(high)} who truly were not {label} were still predicted {label} more "
                f"often than in group {_quoted(low)}")
    if metric == "fnr":
        return (f"people in group {_quoted(high)} who truly were {label} were missed more often than in group "
                f"{_quoted(low)}")
    if metric == "accuracy":
        return f"the model was right more often for group {_quoted(high)} than for group {_quoted(low)}"
    return f"people in group {_quoted(high)} were predicted {label} more often than in group {_quoted(low)}"


def favoured(metric: str, high: Any, low: Any, outcome_effect: str | None) -> str:
    """"“X” is favoured" from who gets the outcome more often and whether it helps or harms; "" when
    the study does not say, or the metric is accuracy (being right more often favours no one's outcome)."""
    if outcome_effect not in OUTCOME_EFFECTS or metric not in ("tpr", "fpr", "selection_rate", "fnr"):
        return ""
    gets_more_of_it = low if metric == "fnr" else high  # a missed case is the outcome withheld
    gets_less = high if metric == "fnr" else low
    return (f"{_quoted(gets_more_of_it)} is favoured" if outcome_effect == "helps"
            else f"{_quoted(gets_less)} is favoured")


def gap_sentence(metric: str | None, high: Any, low: Any, high_rate: Any, low_rate: Any, positive: Any,
                 outcome_effect: str | None) -> str:
    """The whole plain sentence of one gap: who gets the outcome more often, the two rates, who is favoured."""
    if metric is None or high is None or low is None:
        return ""
    rates = (f" ({fmt_pct(high_rate)} vs {fmt_pct(low_rate)})" if is_number(high_rate) and is_number(low_rate)
             else "")
    text = who_gets_more(metric, high, low, positive)
    text = text[0].upper() + text[1:] + rates
    side = favoured(metric, high, low, outcome_effect)
    return text + (f": {side}." if side else ".")


def comparison_verdict(entry: Mapping[str, Any] | None) -> str | None:
    """"narrowed" | "widened" | "no clear difference" | "too small to matter" | None (not comparable)
    for one `compared_with_supervised` entry: the family-adjusted decision, then the practical floor."""
    if not entry:
        return None
    difference, ci = entry.get("difference"), entry.get("ci")
    if not is_number(difference) or ci_includes_zero(ci) is None:
        return None
    clear = entry.get("excludes_zero")
    if clear is None:
        clear = not ci_includes_zero(ci)
    below = entry.get("below_floor")
    if below is None:
        below = not clears_floor(difference, float(entry.get("practical_floor", PRACTICAL_FLOOR)))
    if clear and below:
        return "too small to matter"
    if not clear:
        return "no clear difference"
    return "narrowed" if difference < 0 else "widened"


VERDICT_PLAIN = {"narrowed": "fairer than the ordinary model", "widened": "less fair than the ordinary model",
                 "no clear difference": "no clear difference from the ordinary model",
                 "too small to matter": f"a difference below {fmt_num(PRACTICAL_FLOOR)}, too small to matter"}


def floor_words() -> str:
    return (f"Differences smaller than {fmt_num(PRACTICAL_FLOOR)} ({fmt_pct(PRACTICAL_FLOOR, 0)} points) are never "
            "called a finding, whatever their interval says.")
