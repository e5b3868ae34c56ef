"""Embeddings page: one model's 2-D map (UMAP) beside the supervised model's, and leakage in words.

The coordinates were computed by the audit (embeddings.parquet); recolouring only regroups the
points, it never recomputes the projection. Points are cached per (run, model), figures per
(run, model, colouring).
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from core.results import tables as core_results
from core.results.formatting import fmt_pct
from core.results.folder import RunResults
from core.results.wording import model_label
from core.vocabulary import split_partition
from dashboard.components import result_charts
from dashboard.components.format import md
from dashboard.components.result_words import partition_label

OUTCOME_COLOURS = {"label": "True outcome", "prediction": "Prediction", "error": "Error (correct / false positive "
                                                                                "/ false negative)"}


def colour_options(res: RunResults) -> dict[str, str]:
    """What a map can be coloured by: {key: label}. Keys are column names of the points."""
    withheld = set(res.report.get("withheld_columns") or [])
    options = {}
    for partition in res.partitions:
        if all(a not in withheld for a in split_partition(partition)):
            options[partition] = partition_label(partition)
    options.update(OUTCOME_COLOURS)
    return options


@st.cache_data(show_spinner=False, max_entries=32)
def points(root: str, run_id: str, model: str, _res: RunResults) -> pd.DataFrame:
    return core_results.embedding_points(_res, model)


# A figure is shared, not copied (cache_resource): unpickling a 9,000-point map on every rerun
# cost 30-60 ms per chart. st.plotly_chart only reads it.
@st.cache_resource(show_spinner=False, max_entries=64)
def figure(root: str, run_id: str, model: str, colour_by: str, colour_title: str, _res: RunResults):
    frame = points(root, run_id, model, _res)
    positive, negative = core_results.outcome_names(_res.report)
    if colour_by == "error":
        categories = ["correct", "false positive", "false negative"]
    elif colour_by in ("label", "prediction"):
        categories = [positive, negative]
    else:
        categories = sorted(frame[colour_by].astype(str).unique())
    attributes = [c for c in _res.sensitive if c in frame.columns]
    hover = [*attributes, "label", "prediction", "score"]
    return result_charts.umap_chart(frame, colour_by, colour_title, plain_label(_res, model), hover, categories)


def plain_label(res: RunResults, model: str) -> str:
    """What a reviewer reads for a model ("Pretrained (SCARF), output layer only"), not its code name."""
    entry = next((m for m in res.report.get("models", []) if m.get("name") == model), None)
    return model_label(entry) if entry else model


def code_names(res: RunResults, models: list[str]) -> str:
    """The code names behind the plain labels, for a help tooltip (the downloads use them)."""
    return "Code names (as in the downloads): " + "; ".join(f"{plain_label(res, m)} = {m}" for m in models) + "."


def map_column(res: RunResults, run_id: str, root: str, model: str, colour_by: str, colour_title: str) -> None:
    st.plotly_chart(figure(root, run_id, model, colour_by, colour_title, res), key=f"umap_{model}",
                    config=result_charts.PLOTLY_CONFIG)
    leakage_words(res, model)


def leakage_words(res: RunResults, model: str) -> None:
    """Leakage of each sensitive attribute from this model's representation, in plain words:
    "a linear probe can / cannot read it", with its interval over the probe's 5 folds, beside
    the raw features with and without the attribute's own columns."""
    table = core_results.leakage_table(res.report, model)
    features = set(res.report["study"].get("features") or [])
    lines = []
    for row in table.to_dict("records"):
        attribute = md(row["attribute"])
        if row["reading"] == "undefined":
            lines.append(f"**{attribute}**: cannot be measured ({md(row['note'])}).")
            continue
        reading = ("a linear probe **can read it** from the representation" if row["reading"] == "readable"
                   else "a linear probe **cannot read it** from the representation (no better than guessing)")
        raw = "" if row["vs_raw"] is None or _missing(row["raw"]) else (
            f" The same probe on the raw features scores {fmt_pct(row['raw'], 0)}, so the model carries "
            + {"less": "**less** of it than the data itself.", "more": "**more** of it than the data itself.",
               "similar": "about as much of it as the data itself."}[row["vs_raw"]])
        feature = (" It is itself one of the model's features." if row["attribute"] in features else
                   " It is not one of the model's features, so whatever the probe reads came through other columns.")
        lines.append(f"**{attribute}**: {reading}: balanced accuracy {fmt_pct(row['balanced_accuracy'], 0)}"
                     f"{_fold_interval(row['low'], row['high'])} (chance: {fmt_pct(row['chance'], 0)}).{raw}{feature}"
                     f"{_proxies_words(row, attribute)}")
    st.markdown("**Leakage**: can a simple (linear) probe read each attribute from the representation? "
                "Each interval is a 95% range over the probe's 5 rounds, each scored on rows it did not learn "
                "from.\n\n"
                + "\n".join(f"- {line}" for line in lines))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fold_interval(low, high) -> str:
    return "" if _missing(low) or _missing(high) else f" ({fmt_pct(low, 0)} to {fmt_pct(high, 0)} over the rounds)"


def _proxies_words(row: dict, attribute: str) -> str:
    """What the other columns alone reveal: the raw-feature probe without the attribute's own columns."""
    if row["without_reading"] == "undefined" or not row["n_dropped"]:
        return ""
    can = "can" if row["without_reading"] == "readable" else "cannot"
    return (f" Without {attribute}'s own columns, the other features (its proxies) score "
            f"{fmt_pct(row['without'], 0)}{_fold_interval(row['without_low'], row['without_high'])}: "
            f"a linear probe {can} read it from them.")
