"""Compare page: every finished run of the study side by side, the best trade-offs, a paired
comparison of two models, and curves across label fractions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import InputError
from core.results import compare as core_results
from core.results.formatting import fmt_ci, fmt_num, fmt_pct, is_number
from core.results.folder import RunResults
from core.vocabulary import GAP_NAMES, HIGHER_IS_BETTER, METRIC_NAMES, NOT_AVAILABLE, SUPERVISED
from dashboard.components import result_charts, runs, state
from dashboard.components.format import md
from dashboard.components.messages import show_input_error
from dashboard.components.result_words import VERDICT_WORDS


@st.cache_data(show_spinner=False, max_entries=32)
def table(root: str, run_ids: tuple[str, ...], attribute: str, gap: str, _pairs: list) -> pd.DataFrame:
    return core_results.comparison_table(_pairs, attribute, gap)


@st.cache_data(show_spinner="Resampling the test rows…", max_entries=64)
def paired(root: str, run_id: str, model_a: str, model_b: str, partition: str, gap: str, _res: RunResults) -> dict:
    return core_results.paired_difference(_res, model_a, model_b, partition, gap)


@st.cache_data(show_spinner=False, max_entries=32)
def curves(root: str, run_ids: tuple[str, ...], partition: str, metric: str, _pairs: list) -> pd.DataFrame:
    return core_results.label_fraction_curves(_pairs, partition, metric)


def tradeoff_section(frame: pd.DataFrame, gap: str, attribute: str, run_ids: tuple[str, ...]) -> None:
    runs_text = "the one finished run" if len(run_ids) == 1 else f"all {len(run_ids)} finished runs"
    several = ("; each run has its own colours, and its markers are filled (the first run) or open and larger "
               "(the next), so models on the same spot stay visible" if len(run_ids) > 1 else "")
    st.markdown(f"Each marker is one model of one run ({runs_text} of this study{several}). "
                "**Diamonds joined by the dashed line are the best trade-offs**: no other model "
                "is both more accurate and fairer on that measure. Error bars are the 95% intervals: markers whose "
                "bars overlap may not really differ.")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(_pareto(run_ids, attribute, gap, "worst_group_accuracy", frame), key="pareto_worst",
                        config=result_charts.PLOTLY_CONFIG)
    with right:
        st.plotly_chart(_pareto(run_ids, attribute, gap, "gap", frame), key="pareto_gap",
                        config=result_charts.PLOTLY_CONFIG)


# Figures are shared, not copied, and keyed by what they show: building two Pareto figures cost
# 0.16 s, most of a rerun.
@st.cache_resource(show_spinner=False, max_entries=64)
def _pareto(run_ids: tuple[str, ...], attribute: str, gap: str, y: str, _frame: pd.DataFrame):
    if y == "worst_group_accuracy":
        return result_charts.pareto_chart(_frame, y, f"worst-group accuracy ({attribute})", "pareto_worst_group",
                                          lower_is_better=False)
    return result_charts.pareto_chart(_frame, "gap", f"{GAP_NAMES[gap].lower()} ({attribute})", "pareto_gap",
                                      lower_is_better=gap not in HIGHER_IS_BETTER)


@st.cache_resource(show_spinner=False, max_entries=64)
def _fractions(run_ids: tuple[str, ...], partition: str, metric: str, title: str, by_group: bool,
               _data: pd.DataFrame):
    return result_charts.fraction_chart(_data, title, by_group)


def _pct(value: float) -> str:
    return fmt_pct(value) if is_number(value) else NOT_AVAILABLE


def table_section(frame: pd.DataFrame, gap: str, attribute: str) -> None:
    """Every model of every run, with full names and every value written out: an undefined value reads
    "n/a", the baseline's comparison with itself "baseline" (never "None"); exact values in the download."""
    several = frame["run_id"].nunique() > 1
    labels = frame["label"] if "label" in frame else frame["model"]
    shown = pd.DataFrame({
        "Model": [f"{run}: {label}" if several else label for run, label in zip(frame["run_name"], labels,
                                                                                 strict=True)],
        "Code name": frame["model"], "Labels": [f"{100 * v:g}%" for v in frame["label_fraction"]],
        "Accuracy": frame["accuracy"].map(_pct), "Balanced accuracy": frame["balanced_accuracy"].map(_pct),
        "Worst-group accuracy": frame["worst_group_accuracy"].map(_pct),
        GAP_NAMES[gap]: [fmt_num(v) if is_number(v) else NOT_AVAILABLE for v in frame["gap"]],
        "Gap minus ordinary model": ["baseline" if m == SUPERVISED else fmt_num(v) if is_number(v) else NOT_AVAILABLE
                                     for m, v in zip(frame["model"], frame["gap_vs_supervised"], strict=True)],
        "Best trade-off": ["yes" if f else "" for f in frame["pareto_worst_group"] | frame["pareto_gap"]]})
    if frame["label_fraction"].nunique() == 1:  # one share of labels: a column saying it again hides others
        shown = shown.drop(columns="Labels")
    small = {name: st.column_config.TextColumn(width="small") for name in shown.columns[2:]}
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        **small, "Model": st.column_config.TextColumn(width="medium"),
        "Gap minus ordinary model": st.column_config.TextColumn(
            width="small", help="This model's gap minus the ordinary (supervised) model's in the same run (negative: narrower). "
                 "See the paired comparison below for whether it is a clear change.")})
    st.caption(f"Gaps and worst-group accuracy are for {md(attribute)}. n/a: undefined (for example a rate "
               "with no row to compute it on). The download keeps the exact values, their intervals and the "
               "trainable parameters.")
    runs.download_csv("Download the comparison (CSV, exact values and intervals)", frame, "comparison.csv",
                      "download_comparison")


def paired_section(runs: list[dict], loaded: dict[str, RunResults], root: str, attribute: str, gap: str) -> None:
    st.markdown("Is one model's gap really smaller than another's? Both models are judged on the same test rows, "
                "which are resampled together; the interval is for the difference of their gaps.")
    by_id = {r["id"]: r for r in runs}
    if len(runs) > 1:
        run_id = st.selectbox("Run", list(by_id), format_func=lambda r: by_id[r]["name"], key="compare_pair_run")
    else:
        run_id = runs[0]["id"]
    res = loaded[run_id]
    models = res.models
    left, right = st.columns(2)
    state.keep_option("compare_model_a", models, next((m for m in models if m != SUPERVISED), models[0]))
    state.keep_option("compare_model_b", models, SUPERVISED if SUPERVISED in models else models[-1])
    model_a = left.selectbox("Model A", models, key="compare_model_a")
    model_b = right.selectbox("Model B", models, key="compare_model_b")
    try:
        result = paired(root, run_id, model_a, model_b, attribute, gap, res)
    except InputError as error:
        show_input_error(error)
        return
    cells = st.columns(3)
    cells[0].metric(f"A: {model_a}", fmt_num(result["value_a"]))
    cells[1].metric(f"B: {model_b}", fmt_num(result["value_b"]))
    cells[2].metric("A minus B", fmt_num(result["difference"]),
                    help=f"{result['confidence']:.0%} interval: {fmt_ci(result['ci'])}")
    verdict = result["verdict"]
    name = GAP_NAMES[gap].lower()
    if verdict is None:
        st.info(f"No interval could be computed for the {name} of these models.", icon=":material/info:")
        return
    span = fmt_ci(result["ci"])
    source = ("from the audit's paired comparison with the supervised baseline, decided on its p-value "
              "Holm-adjusted within its family of comparisons" if result["source"] == "audit"
              else f"computed now from the run's predictions, {result['n_boot']:,} resamples, one comparison")
    if verdict == "no clear difference":
        st.markdown(f"A's {name} is {VERDICT_WORDS[verdict]} from B's (A minus B, {result['confidence']:.0%} "
                    f"interval {span}): the difference could be chance ({source}).")
    else:
        st.markdown(f"A's {name} is {VERDICT_WORDS[verdict]} than B's (A minus B, {result['confidence']:.0%} "
                    f"interval {span}; {source}).")


def fractions_section(pairs: list, root: str, run_ids: tuple[str, ...], partition: str, gap: str) -> None:
    fractions = sorted({float(report["study"]["label_fraction"]) for _, report in pairs})
    if len(fractions) < 2:
        st.info("Run the audit with other shares of labelled rows (Train page, *Share of training rows with "
                "labels*) to see how each model's groups fare as labels grow scarce. So far every run used "
                f"{fractions[0] * 100:g}%.", icon=":material/info:")
        return
    choices = {"accuracy": "Group accuracy", "tpr": "Group true-positive rate",
               "selection_rate": "Group selection rate", gap: GAP_NAMES[gap]}
    metric = st.selectbox("Show", list(choices), format_func=choices.get, key="compare_curve_metric")
    data = curves(root, run_ids, partition, metric, pairs)
    by_group = metric in METRIC_NAMES
    st.plotly_chart(_fractions(run_ids, partition, metric, choices[metric], by_group, data), key="fraction_chart",
                    config=result_charts.PLOTLY_CONFIG)
    st.caption("One line per model (and per group); when several runs used the same share of labels, the newest "
               "counts. Error bars: 95% intervals.")
