"""Which fairness measure leads, and why: a short guided choice in the spirit of Aequitas' fairness tree.

    choose_measure(outcome_effect, costlier_error, scarce) -> {"measure", "also", "rationale"}

Three questions (Saleiro et al. 2018, the Aequitas "fairness tree", reduced to the gaps the audit
computes): does the outcome help or harm the person (assistive or punitive); which error costs the
person more (being wrongly given the outcome, wrongly denied it, or both alike); and is the
intervention scarce (only a few can get it). The rules:

- both errors alike, or unanswered: the equalized-odds gap (true- and false-positive rates);
- punitive, or "wrongly given" costlier: the false-positive-rate gap (people wrongly flagged);
- assistive, or "wrongly denied" costlier: the equal-opportunity gap (deserving people missed);
  an explicit answer on the costlier error wins over the default of the outcome's effect;
- scarce: the demographic-parity gap (who gets the few places) is added beside the headline.

Every other measure stays visible in the appendix and on the Fairness page's gap choice; this only
picks what the scorecard leads with and writes the reason into the report and the sign-off.
"""

from __future__ import annotations

from typing import Any

from core.vocabulary import GAP_NAMES

COSTLIER_ERRORS = {"given": "being wrongly given the outcome", "denied": "being wrongly denied the outcome",
                   "alike": "both errors alike"}


def choose_measure(outcome_effect: str | None = None, costlier_error: str | None = None,
                   scarce: bool | None = None) -> dict[str, Any]:
    """{"measure": the headline gap, "also": other gaps to show beside it, "rationale": one paragraph}."""
    reasons = []
    if costlier_error == "given" or (costlier_error is None and outcome_effect == "harms"):
        measure = "fpr_difference"
        reasons.append("the outcome harms the person" if outcome_effect == "harms" and costlier_error is None else
                       "being wrongly given the outcome costs the person most")
        reasons[-1] += ", so the headline is who is wrongly given it (the false-positive-rate gap)"
    elif costlier_error == "denied" or (costlier_error is None and outcome_effect == "helps"):
        measure = "equal_opportunity_difference"
        reasons.append("the outcome helps the person" if outcome_effect == "helps" and costlier_error is None else
                       "being wrongly denied the outcome costs the person most")
        reasons[-1] += ", so the headline is who is missed among those who deserve it (the equal-opportunity gap)"
    else:
        measure = "equalized_odds_difference"
        reasons.append("both kinds of error matter alike (or the question is not answered), so the headline is the "
                       "larger of the two error gaps (the equalized-odds gap)")
    also = []
    if scarce:
        also.append("demographic_parity_difference")
        reasons.append("the intervention is scarce, so who gets the few places (the demographic-parity gap) is "
                       "shown beside it")
    rationale = ("; ".join(reasons) + ". Every other measure stays in the appendix.")
    return {"measure": measure, "also": also, "rationale": rationale[0].upper() + rationale[1:],
            "measure_name": GAP_NAMES[measure]}
