"""Differentially private models on the pages (issue 19): the Train page's option to add private
versions at chosen epsilons, in plain words, and the Compare page's section on what each privacy
guarantee cost overall and for each group. No science here: core.results.privacy_cost gives every
number and sentence, core.results.privacy_figures the curve."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from core.results.formatting import fmt_ci, fmt_num
from core.results.privacy_cost import epsilon_curve, is_private, privacy_costs, strongest_guarantee_sentences
from core.results.privacy_figures import epsilon_figure
from core.results.wording import floor_words
from dashboard.components.format import md

ON_KEY, EPSILON_KEY = "train_dp", "train_dp_epsilon"
EPSILON_CHOICES = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 16.0)
_DEFAULT = [1.0, 3.0, 8.0]
EPSILON_WORDS = ("Epsilon bounds how much any one person's row can change what training produces: with a "
                 "small epsilon (1) the trained model is nearly the same whether or not that person's row was "
                 "used, so little can be learned about them from it; a large one (8 or more) is a weaker "
                 "promise. The guarantee covers the labelled training rows of the fine-tuning only: not the "
                 "pretraining rows, not the way the table was encoded, not the validation rows and not the "
                 "choice of settings (docs/privacy.md).")


def privacy_option() -> None:
    """The Train page's differential privacy: a checkbox, the epsilons, what they mean."""
    if st.checkbox("Also train privately (differential privacy)", key=ON_KEY,
                   help="Adds private versions of the ordinary model and of the fully retrained pretrained model "
                        "(or the output-layer one), one per epsilon, compared with the same models trained "
                        "without privacy: what the guarantee costs, and whom."):
        st.multiselect("Epsilon values (smaller: more private)", EPSILON_CHOICES, default=_DEFAULT, key=EPSILON_KEY)
        st.caption(EPSILON_WORDS)


def chosen_epsilons() -> list[float]:
    """The Train page's epsilons, or [] when private training is off."""
    if not st.session_state.get(ON_KEY):
        return []
    return sorted(float(e) for e in (st.session_state.get(EPSILON_KEY) or []))


def newest_with_private(finished: list[Mapping], loaded: Mapping) -> Mapping | None:
    """The newest finished run (of `finished`, newest first) with private models."""
    return next((run for run in finished
                 if any(is_private(m) for m in loaded[run["id"]].report.get("models", []))), None)


def _cost_table(report: Mapping) -> pd.DataFrame:
    rows = []
    for cost in privacy_costs(report):
        entries = [("overall", cost["overall"])] + [(f"{a} = {g}", e) for a, groups in cost["groups"].items()
                                                      for g, e in groups.items()]
        for where, entry in entries:
            if entry:
                rows.append({"Model": cost["label"], "Epsilon spent": fmt_num(cost["epsilon"]), "Who": where,
                             "Accuracy, private": fmt_num(entry.get("model_a"), 3),
                             "Accuracy, without": fmt_num(entry.get("model_b"), 3),
                             "Difference": fmt_num(entry.get("difference"), 3), "Interval": fmt_ci(entry.get("ci")),
                             "Verdict": entry.get("verdict") or "n/a"})
    return pd.DataFrame(rows)


def privacy_section(report: Mapping, run_name: str | None = None) -> None:
    """The epsilon curve and, in words, what the strongest guarantee cost; then every group's cost."""
    where = f" in {md(run_name)}" if run_name else ""
    st.markdown(f"Each private model{where} against the same model trained without privacy, differences paired "
                "over the replicates and the test rows, Holm-adjusted:")
    for sentence in strongest_guarantee_sentences(report):
        st.markdown(f"- {md(sentence)}")
    st.caption(floor_words())
    attributes = list((report.get("study") or {}).get("sensitive") or [])
    for curve in epsilon_curve(report):
        st.plotly_chart(epsilon_figure(curve, attributes), use_container_width=True, key=f"privacy_{curve['base']}")
    table = _cost_table(report)
    if len(table):
        st.markdown("**Every guarantee, overall and per group** (accuracy averaged over the replicates):")
        st.dataframe(table, hide_index=True, use_container_width=True)


