"""Federated pretraining on the pages (issue 19): the Train page's option to pretrain federated by a
column, and the Compare page's section on what federating cost each site and each group. No science
here: core.results.federated_sites gives every number and sentence."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from core.errors import InputError
from core.learning.federated_config import MAX_SITES, MIN_SITE_ROWS
from core.results.federated_sites import federated_findings, federated_models, site_accuracy
from core.results.folder import RunResults
from core.results.formatting import fmt_ci, fmt_num, fmt_pct
from core.results.wording import floor_words, model_label
from dashboard.components.format import md
from dashboard.components.messages import show_input_error

BY_KEY, ROUNDS_KEY = "train_federated_by", "train_federated_rounds"
_DEFAULT_ROUNDS = 5


def federated_option() -> None:
    """The Train page's federated pretraining: a column naming the sites, the rounds, in plain words."""
    by = st.text_input("Pretrain federated, by column (optional)", key=BY_KEY,
                       placeholder="e.g. region, hospital, branch",
                       help="Also pretrains the encoder as if each value of this column were a separate site "
                            "(a hospital, a branch) that keeps its rows: each site trains on its own rows and only "
                            "the model updates are averaged (Flower, FedAvg). The federated models are then "
                            "fine-tuned and audited like the others and compared with them.")
    if by.strip():
        st.number_input("Federated rounds", min_value=1, max_value=50, step=1, value=_DEFAULT_ROUNDS,
                        key=ROUNDS_KEY, help="Rounds of local training at every site followed by averaging.")
        st.caption(f"Federated by **{md(by.strip())}**: 2 to {MAX_SITES} sites with at least {MIN_SITE_ROWS} rows "
                   "each. No site's rows leave it; what a site's data costs in accuracy shows on the Compare page, "
                   "per site and per group. Adds about one pretraining's time.")


def chosen_federation() -> tuple[str | None, int]:
    """(the column the Train page federates by, or None; its rounds)."""
    by = str(st.session_state.get(BY_KEY) or "").strip()
    return (by or None), int(st.session_state.get(ROUNDS_KEY) or _DEFAULT_ROUNDS)


def newest_with_federated(finished: list[Mapping], loaded: Mapping) -> Mapping | None:
    """The newest finished run (of `finished`, newest first) with federated models."""
    return next((run for run in finished if federated_models(loaded[run["id"]])), None)


def _site_table(table: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({
        "Model": [labels.get(name, name) for name in table["model"]], "Site": table["site"],
        "Test rows": table["n_test"], "Accuracy, federated": [fmt_pct(v) for v in table["accuracy"]],
        "Accuracy, central": [fmt_pct(v) for v in table["base_accuracy"]],
        "Difference (points)": [fmt_num(100 * v, 1) for v in table["difference"]],
        "Interval": [fmt_ci(None if lo is None else [100 * lo, 100 * hi]) for lo, hi
                     in zip(table["ci_low"], table["ci_high"])],
        "Clear after Holm": ["yes" if clear and not below else "no" for clear, below
                             in zip(table["excludes_zero"], table["below_floor"])]})


def federated_section(results: RunResults, run_name: str | None = None) -> None:
    """What federated pretraining cost, in words, then per site and per group."""
    report = results.report
    labels = {entry["name"]: model_label(entry) for entry in report.get("models", [])}
    where = f" in {md(run_name)}" if run_name else ""
    st.markdown(f"Each federated model{where} against the same model pretrained on the pooled rows (central), "
                "differences paired over the replicates and the test rows, Holm-adjusted:")
    for finding in federated_findings(report):
        st.markdown(f"- {md(finding['sentence'])}")
        for sentence in finding["groups"]:
            st.markdown(f"    - {md(sentence)}")
    st.caption(floor_words())
    try:
        table = site_accuracy(results)
    except InputError as error:  # the study's table moved or changed: the per-site rows cannot be read
        show_input_error(error)
        return
    st.markdown("**Per site** (the sites' test rows; accuracy averaged over the replicates):")
    st.dataframe(_site_table(table, labels), hide_index=True, use_container_width=True)
