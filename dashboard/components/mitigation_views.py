"""Mitigations on the pages: the Train page's choice of mitigations (issue 18 part 4) and the
Compare page's trade-off section (part 3). No science here: core.results.tradeoff gives every
number and sentence, core.results.tradeoff_figures every figure."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from core.mitigation.catalog import CATALOG, FAIRLEARN, MITIGATIONS
from core.results.tradeoff import mitigation_findings, sweep_curves, tradeoff_points
from core.results.tradeoff_figures import sweep_figure, tradeoff_figure
from core.results.wording import floor_words
from core.vocabulary import GAP_NAMES, HIGHER_IS_BETTER
from dashboard.components import result_charts
from dashboard.components.format import md

MITIGATIONS_KEY, SWEEP_KEY = "train_mitigations", "train_mitigation_sweep"


def mitigation_options() -> None:
    """The Train page's mitigations: a multiselect from the catalog, each chosen one's plain line and cost."""
    chosen = st.multiselect("Mitigations to try (optional)", [m.name for m in CATALOG], key=MITIGATIONS_KEY,
                            help="Each mitigation becomes one more model of the audit, made from one of its models "
                                 "(its base) and compared with that base: what it buys on the gaps and what it costs "
                                 "in accuracy, with intervals over the replicates.")
    for name in chosen:
        mitigation = MITIGATIONS[name]
        st.caption(f"**{name}** ({mitigation.kind}): {md(mitigation.summary)}. Expected time: {mitigation.cost}.")
    if any(MITIGATIONS[name].kind == FAIRLEARN and name.startswith("eg-") for name in chosen):
        st.checkbox("Sweep the constraint's bound (a curve of four fits instead of one)", key=SWEEP_KEY,
                    help="Fits each ExponentiatedGradient mitigation at bounds 0.005, 0.01, 0.02 and 0.05: a "
                         "looser bound costs less accuracy and narrows the gap less.")


def chosen_mitigations() -> tuple[list[str], bool]:
    """(the mitigations chosen on the Train page, whether to sweep their bounds)."""
    chosen = list(st.session_state.get(MITIGATIONS_KEY) or [])
    return chosen, bool(st.session_state.get(SWEEP_KEY, False)) and bool(chosen)


def tradeoff_section(report: Mapping, attribute: str, gap: str, run_name: str | None = None) -> None:
    """Accuracy against the gap for every model of one run, mitigations included, with intervals on both
    axes; the frontier; in words what each mitigation bought and cost; the sweeps as curves."""
    findings = mitigation_findings(report, attribute, gap)
    if not findings:
        st.info("No run of this study has mitigated models yet. Choose mitigations on the Train page, or run "
                "`equiscope audit ... --mitigations NAME` ('equiscope mitigations' lists them).",
                icon=":material/info:")
        return
    title = f"{attribute} {GAP_NAMES[gap].lower()}"
    where = f" of {md(run_name)}" if run_name else ""
    st.markdown(f"Every model{where}, the mitigations (diamonds) joined to the model each one changes. Error bars "
                "are the intervals over the training replicates and the test rows; **outlined markers joined by the "
                "dashed line are the best trade-offs**. Open markers are flagged (near chance or one label): their "
                "gaps say little.")
    st.plotly_chart(tradeoff_figure(tradeoff_points(report, attribute, gap), title, gap not in HIGHER_IS_BETTER),
                    key="mitigation_tradeoff", config=result_charts.PLOTLY_CONFIG)
    st.markdown("**What each mitigation bought and cost**, against the model it changes (differences paired over "
                "the replicates and the test rows, Holm-adjusted):")
    for finding in findings:
        marker = ":material/check_circle:" if finding["fairer"] else ""
        st.markdown(f"- {marker} {md(finding['sentence'])}")
    st.caption(floor_words())
    curves = sweep_curves(report, attribute, gap)
    if not curves.empty:
        st.plotly_chart(sweep_figure(curves, title), key="mitigation_sweep", config=result_charts.PLOTLY_CONFIG)


def newest_with_mitigations(finished: list[Mapping], loaded: Mapping) -> Mapping | None:
    """The newest finished run (of `finished`, newest first) whose report has mitigated models."""
    return next((run for run in finished
                 if any(m.get("mitigation") for m in loaded[run["id"]].report.get("models", []))), None)
