"""Fairness page: gaps across models, the per-group table of one model, and the threshold what-if.

Tables come from core.results.tables (cached per run, model and partition); this module only rounds
them for reading and words them. Downloads carry the exact values.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from core.errors import InputError
from core.results import tables as core_results
from core.results import whatif
from core.results.formatting import fmt_num, fmt_pct
from core.results import folder, scorecard
from core.results.wording import model_label
from core.results.folder import RunResults
from core.vocabulary import DECISION_THRESHOLD, GAP_NAMES, METRIC_NAMES, NOT_AVAILABLE
from dashboard.components import result_charts, runs
from dashboard.components.format import md, words
from dashboard.components.messages import show_input_error
from dashboard.components.result_words import (GAP_CHOICES, GAP_INTERVAL, GAP_SCALE, compact, gap_meaning,
                                               metric_meaning, pair_sentence, supervised_sentence)
TABLE_METRICS = ("accuracy", "tpr", "fpr", "selection_rate", "precision")
CONSTRAINTS = {"demographic_parity": "Demographic parity", "equal_opportunity": "Equal opportunity",
               "equalized_odds": "Equalized odds"}
CONSTRAINT_HELP = {"demographic_parity": "Equal selection rates: every group gets the outcome equally often.",
                   "equal_opportunity": "Equal true-positive rates: rows that truly have the outcome are recognised "
                                        "equally often in every group.",
                   "equalized_odds": "Equal true-positive and false-positive rates in every group."}


@st.cache_data(show_spinner=False, max_entries=64)
def gap_table(root: str, run_id: str, partition: str, gap: str, _report: dict) -> pd.DataFrame:
    return core_results.gap_table(_report, partition, gap)


@st.cache_data(show_spinner=False, max_entries=64)
def group_table(root: str, run_id: str, model: str, partition: str, _report: dict) -> pd.DataFrame:
    return core_results.group_table(_report, model, partition)


@st.cache_resource(show_spinner=False, max_entries=64)
def gap_figure(root: str, run_id: str, partition: str, gap: str, level: float, _table: pd.DataFrame):
    return result_charts.gap_chart(_table, GAP_NAMES[gap], level)


@st.cache_data(show_spinner=False, max_entries=128)
def _manual_result(root: str, run_id: str, model: str, partition: str, thresholds: tuple, _res: RunResults) -> dict:
    return whatif.manual_whatif(_res, model, partition, dict(thresholds))


def confidence(res: RunResults) -> float:
    return float((res.report.get("bootstrap") or {}).get("confidence", 0.95))


def gaps_section(res: RunResults, run_id: str, root: str, partition: str, outcome_effect: str | None = None) -> None:
    """Gap bars across models with error bars, and each model's gap in words (who gets the outcome more
    often, and who is favoured when the study says whether the outcome helps or harms)."""
    positive = str(res.report["study"]["positive_label"])
    gap = st.selectbox("Gap", GAP_CHOICES, format_func=GAP_NAMES.get, key="fair_gap",
                       help="Each gap compares the groups on one measure. Equalized odds is the usual headline.")
    st.markdown(f"**{GAP_NAMES[gap]}**: {gap_meaning(gap, positive)} {GAP_SCALE}")
    table = gap_table(root, run_id, partition, gap, res.report)
    level = confidence(res)
    st.plotly_chart(gap_figure(root, run_id, partition, gap, level, table), key="fair_gap_chart",
                    config=result_charts.PLOTLY_CONFIG)
    lines = []
    view = res.view
    for row in table.to_dict("records"):
        value = f"{NOT_AVAILABLE} (fewer than two groups have this rate defined)" if math.isnan(row["value"]) else \
            f"{fmt_num(row['value'])} ({level:.0%} interval {fmt_num(row['lo'])} to {fmt_num(row['hi'])})"
        model = view.model(row["model"])
        cell = scorecard.gap_cell(view, model, partition, gap, outcome_effect)
        small = f" Note: {md(cell['small'])}." if cell["small"] else ""
        text = (f"**{md(model_label(model.entry))}** ({md(row['model'])}): {value}. {md(cell['sentence'])}{small} "
                f"{pair_sentence(row, level)} {supervised_sentence(row, level)}")
        lines.append(text.strip())
    st.markdown("\n".join(f"- {line}" for line in lines))
    with st.expander("How to read these intervals", icon=":material/help:"):
        st.markdown(GAP_INTERVAL)
    runs.download_csv("Download the gaps (CSV, exact values)", table.assign(partition=partition, gap=gap),
                      f"gaps-{run_id}.csv", "download_gaps")


def _display_groups(table: pd.DataFrame) -> pd.DataFrame:
    shown = pd.DataFrame({"Group": table["group"], "Rows": table["n"]})
    # a tiny group's interval can collapse to one value ("100.0% (100.0-100.0)"): it is not certain
    for metric in TABLE_METRICS:
        shown[METRIC_NAMES[metric]] = [compact(v, lo, hi) for v, lo, hi in
                                       zip(table[metric], table[f"{metric}_lo"], table[f"{metric}_hi"], strict=True)]
    shown["Note"] = [", ".join(filter(None, ["lowest accuracy" if w else "", "small group" if s else "",
                                             f"unreliable interval: {u}" if u else ""]))
                     for w, s, u in zip(table["worst"], table["small"], table["unreliable"], strict=True)]
    return shown


def _highlight(row: pd.Series) -> list[str]:
    if "lowest accuracy" in row["Note"]:
        return ["background-color: #FDECC8; font-weight: 600"] * len(row)
    if "small group" in row["Note"]:
        return ["color: #6B7280"] * len(row)
    return [""] * len(row)


def groups_section(res: RunResults, run_id: str, root: str, partition: str, model: str) -> None:
    """The chosen model's per-group metrics with intervals; worst group highlighted, small groups flagged."""
    positive = str(res.report["study"]["positive_label"])
    table = group_table(root, run_id, model, partition, res.report)
    small = table[table["small"]]
    minimum = res.view.min_group_size
    if len(small):
        st.warning(f"Small groups (fewer than {minimum} test rows): "
                   f"{words([f'{md(g)} ({n})' for g, n in zip(small['group'], small['n'], strict=True)])}. "
                   "Their numbers are uncertain: read their wide intervals before drawing conclusions.",
                   icon=":material/warning:")
    shown = _display_groups(table)
    st.dataframe(shown.style.apply(_highlight, axis=1), hide_index=True, width="stretch",
                 column_config={"Rows": st.column_config.NumberColumn(format="localized")})
    worst = table[table["worst"]]
    if len(worst):
        st.markdown(f"Highlighted: the group with the **lowest accuracy**, {words([md(g) for g in worst['group']])} "
                    f"({fmt_pct(worst['accuracy'].iloc[0])}). Each cell shows the value and, in brackets, its "
                    f"{confidence(res):.0%} interval. *n/a* means the measure is undefined for that group "
                    "(for example no row of the group truly has the outcome), never 0.")
    with st.expander("What each column means", icon=":material/help:"):
        st.markdown("\n".join(f"- **{METRIC_NAMES[m]}**: {metric_meaning(m, positive)}." for m in TABLE_METRICS))
    runs.download_csv("Download the per-group table (CSV, exact values)",
                      table.assign(model=model, partition=partition), f"groups-{run_id}.csv", "download_group_metrics")


# ----------------------------------------------------------------------------- threshold what-if
@st.cache_data(show_spinner="Fitting thresholds on the validation rows…", max_entries=32)
def _fair(root: str, run_id: str, model: str, partition: str, constraint: str, _res: RunResults) -> dict:
    return whatif.fair_whatif(_res, model, partition, constraint)


def whatif_section(res: RunResults, run_id: str, root: str, partition: str, model: str) -> None:
    try:
        whatif.check_decides_at_threshold(res, model)
    except InputError as error:  # not the reviewer's mistake: what this model is
        st.info(md(str(error)), icon=":material/casino:")
        return
    n_val = 0 if res.validation is None else len(res.validation)
    st.markdown(f"The what-if is for **{md(model_label(res.view.model(model).entry))}** ({md(model)}; choose "
                "another model above). "
                f"The model gives every row a score and predicts the outcome when the score is at least "
                f"{DECISION_THRESHOLD:g}. Here each group of **{md(partition)}** can get its own threshold. The what-if is judged on the "
                f"{len(res.predictions):,} test rows; fair thresholds are fitted on the {n_val:,} validation rows "
                "first, so they are not tuned to the rows they are judged on.")
    mode = st.radio("Thresholds", ["manual", "fair"], horizontal=True, key="fair_whatif_mode",
                    format_func={"manual": "Set them by hand", "fair": "Fair thresholds in one click"}.get)
    try:
        if mode == "manual":
            result = _manual(res, run_id, root, partition, model)
        else:
            result = _one_click(res, run_id, root, partition, model)
    except InputError as error:
        show_input_error(error)
        return
    if result is not None:
        _whatif_result(res, result, run_id)


def _manual(res: RunResults, run_id: str, root: str, partition: str, model: str) -> dict:
    groups = sorted(set(folder.partition_labels(res.predictions, partition)))
    columns = st.columns(min(4, len(groups)))
    thresholds = {}
    for index, group in enumerate(groups):
        key = f"threshold|{run_id}|{model}|{partition}|{group}"
        st.session_state.setdefault(key, DECISION_THRESHOLD)
        with columns[index % len(columns)]:
            thresholds[group] = st.slider(group, 0.0, 1.0, step=0.01, key=key)
    return _manual_result(root, run_id, model, partition, tuple(sorted(thresholds.items())), res)


def _one_click(res: RunResults, run_id: str, root: str, partition: str, model: str) -> dict | None:
    chosen_key = f"fair_constraint|{run_id}|{model}|{partition}"
    columns = st.columns(len(CONSTRAINTS))
    for column, (constraint, label) in zip(columns, CONSTRAINTS.items(), strict=True):
        if column.button(label, key=f"fair_button_{constraint}", width="stretch", help=CONSTRAINT_HELP[constraint]):
            st.session_state[chosen_key] = constraint
    constraint = st.session_state.get(chosen_key)
    if constraint is None:
        st.caption("Choose which kind of fairness the thresholds should meet.")
        return None
    result = _fair(root, run_id, model, partition, constraint, res)
    st.markdown(f"**{CONSTRAINTS[constraint]}** ({CONSTRAINT_HELP[constraint].lower().rstrip('.')}), fitted on "
                "the validation rows. The rule per group:")
    st.markdown("\n".join(f"- *{md(g)}*: {md(whatif.describe_rule(rule))}"
                          for g, rule in result["rules"].items()))
    if result["randomized"]:
        st.warning("These thresholds are **randomised**: for some rows the decision is drawn at random "
                   "(two rows with the same score in the same group can get different decisions). That is how "
                   "an exact rate between two achievable ones is met, and equalized odds usually needs it. The "
                   "numbers below are one draw with the run's seed. Many organisations cannot use randomised "
                   "decisions; treat this as a measure of what the constraint costs, not as a policy.",
                   icon=":material/casino:")
    return result


def _whatif_result(res: RunResults, result: dict, run_id: str) -> None:
    gaps = whatif.whatif_gaps(result)
    cells = st.columns(len(gaps))
    for cell, row in zip(cells, gaps.to_dict("records"), strict=True):
        # no change reads grey, never a red "+0.00" that looks like an error (issue 17, item 10)
        if row["measure"] == "accuracy":
            unchanged = not abs(100 * row["change"]) >= 0.05
            cell.metric("Accuracy", fmt_pct(row["after"]),
                        delta="no change" if unchanged else f"{100 * row['change']:+.1f} points",
                        delta_color="off" if unchanged else "normal",
                        help=f"The accuracy cost: against one threshold of {DECISION_THRESHOLD:g} for everyone.")
        else:
            unchanged = math.isnan(row["change"]) or abs(row["change"]) < 0.005
            change = (NOT_AVAILABLE if math.isnan(row["change"]) else "no change" if unchanged
                      else f"{row['change']:+.2f}")
            cell.metric(GAP_NAMES[row["measure"]], fmt_num(row["after"]), delta=change,
                        delta_color="off" if unchanged else "inverse", help=f"Before: {fmt_num(row['before'])}")
    table = whatif.whatif_groups(result)
    shown = pd.DataFrame({"Group": table["group"], "Rows": table["n"]})
    for metric in ("accuracy", "tpr", "fpr", "selection_rate"):
        shown[f"{METRIC_NAMES[metric]}: before"] = table[f"{metric}_before"].map(fmt_pct)
        shown[f"{METRIC_NAMES[metric]}: after"] = table[f"{metric}_after"].map(fmt_pct)
    st.dataframe(shown, hide_index=True, width="stretch")
    st.caption(f"Before: one threshold of {DECISION_THRESHOLD:g} for every group. These are point values on the test "
               "rows, without intervals; differences of a few points between groups can be chance, especially in "
               "small groups.")
    runs.download_csv("Download the what-if (CSV, exact values)", table, f"whatif-{run_id}.csv", "download_whatif")
