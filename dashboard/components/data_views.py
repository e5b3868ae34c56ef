"""Data page, what the reviewer reads: column profile, groups and base rates, proxies, notes.

Numbers are rounded for reading; each table has a CSV download with the exact values.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.data import PreparedData
from core.data.proxies import MODERATE
from core.data.spec import positive_outcome
from core.results.export import csv_bytes
from core.results.formatting import fmt_int, fmt_num, fmt_pct
from core.workspace.uploads import safe_file_name
from dashboard.components import charts, tables
from dashboard.components.format import bullets, md

KIND_WORDS = {"numeric": "number", "boolean": "two values", "categorical": "category", "datetime": "date",
              "text": "free text", "id": "identifier", "constant": "one value only", "empty": "empty"}
PII_WORDS = {"person_name": "name", "email": "e-mail", "phone": "phone", "date_of_birth": "date of birth",
             "national_id": "ID number", "address": "address", "ip_address": "IP address",
             "free_text": "free text"}
#: A column the personal-data scan looked at and found nothing in (a blank cell read as "not checked").
NO_PII = "none found"


def show_columns(facts: tables.ColumnFacts, table: tables.Table, features: list[str] | None) -> None:
    """The column profile: kind, missing values, distinct values, personal-data flag, use."""
    profile = pd.DataFrame(facts.profile)
    used = set(features or [])
    shown = pd.DataFrame({
        "Column": profile["column"],
        "Kind": profile["kind"].map(KIND_WORDS).fillna(profile["kind"]),
        "Missing": (100 * profile["missing_rate"]).round(1),
        "Distinct values": profile["n_unique"],
        "Personal data": [PII_WORDS.get(kind, kind) if isinstance(kind, str) else NO_PII for kind in profile["pii"]],
        "Model uses it": profile["column"].isin(used) if features is not None else False,
        "Values": profile["summary"],
    })
    st.dataframe(shown, hide_index=True, width="stretch", height=min(36 * (len(shown) + 1) + 3, 420),
                 column_config={
                     "Missing": st.column_config.NumberColumn(format="%.1f%%", help="Share of empty cells"),
                     "Distinct values": st.column_config.NumberColumn(format="localized"),
                     "Model uses it": st.column_config.CheckboxColumn(help="Chosen as a feature below"),
                     "Values": st.column_config.TextColumn(width="large", help="Range and mean, or the most "
                                                           "common values; withheld for personal data"),
                 })
    st.download_button("Download the column profile (CSV, exact values)", csv_bytes(profile),
                       file_name=f"{Path(safe_file_name(table.name)).stem}-columns.csv", mime="text/csv", key="download_columns",
                       icon=":material/download:")


@st.cache_data(show_spinner=False, max_entries=32)
def _labelled_and_base_rate(sha256: str, spec_json: str, _data: PreparedData) -> tuple[int, float | None]:
    """(labelled rows, base rate over them): once per table and set-up, not over every row on every rerun."""
    labelled = int(_data.labelled.sum())
    return labelled, float(_data.y[_data.labelled].mean()) if labelled else None


def show_overview(data: PreparedData, sha256: str) -> None:
    labelled, base_rate = _labelled_and_base_rate(sha256, tables.spec_key(data.spec), data)
    cells = st.columns(4)
    cells[0].metric("Rows", fmt_int(len(data.frame)))
    cells[1].metric("Rows with an outcome", fmt_int(labelled),
                    help="Rows without an outcome are used, unlabelled, for pretraining only.")
    cells[2].metric("Base rate, all rows", fmt_pct(base_rate),
                    help=f"Share of rows with {data.spec.target} = {data.spec.positive_label}.")
    cells[3].metric("Features the model may use", len(data.features))


def show_notes(table: tables.Table, data: PreparedData | None) -> None:
    notes = list(table.notes) + (list(data.notes) if data else [])
    if notes:
        with st.expander(f"Notes on how the table was read ({len(notes)})", icon=":material/info:"):
            st.markdown(bullets([md(note) for note in notes]))


@st.cache_resource(show_spinner=False, max_entries=64)
def _group_figure(sha256: str, spec_json: str, attribute: str, _rows: list[dict], _overall: float | None,
                  outcome: str):
    """Building a plotly figure costs about 35 ms; the figure is only read, so it is built once
    per table, set-up and attribute and shared (cache_resource) rather than rebuilt every rerun."""
    return charts.group_chart(attribute, _rows, _overall, outcome)


def show_groups(data: PreparedData, groups: dict[str, list[dict]], sha256: str) -> None:
    """One chart and one table per sensitive attribute, then the warnings about groups."""
    spec = data.spec
    outcome = positive_outcome(spec.target, spec.positive_label)
    overall = _labelled_and_base_rate(sha256, tables.spec_key(spec), data)[1]
    st.markdown(
        f"The **base rate** of a group is the share of its rows with the positive outcome "
        f"(*{md(outcome)}*). Different base rates are not unfair in themselves, but a model learns them: "
        f"a gap here often reappears in the model's decisions. Groups with fewer than {spec.min_group_size} "
        f"rows are marked **small** (amber): their results will be uncertain.")
    for warning in data.warnings:
        st.warning(md(warning), icon=":material/group:")
    for attribute, rows in groups.items():
        st.markdown(f"#### {md(attribute)}")
        figure = _group_figure(sha256, tables.spec_key(spec), attribute, rows, overall, outcome)
        st.plotly_chart(figure, width="stretch",
                                config=charts.PLOTLY_CONFIG, key=f"group_chart_{attribute}")
        st.dataframe(_group_table(rows), hide_index=True, width="content",
                             column_config={
                                 "Rows": st.column_config.NumberColumn(format="localized"),
                                 "Share": st.column_config.NumberColumn(format="%.1f%%"),
                                 "Base rate": st.column_config.NumberColumn(format="%.1f%%"),
                                 "Missing values": st.column_config.NumberColumn(
                                     format="%.1f%%", help="Share of the group's feature cells that are empty"),
                             })
        _missing_gap(attribute, rows)
    exact = pd.DataFrame([{"attribute": attribute, **row} for attribute, rows in groups.items() for row in rows])
    st.download_button("Download group sizes and base rates (CSV, exact values)", csv_bytes(exact),
                       file_name="groups.csv", mime="text/csv", key="download_groups", icon=":material/download:")


def _group_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({
        "Group": [r["group"] + (" (small)" if r["small"] else "") for r in rows],
        "Rows": [r["n"] for r in rows],
        "Share": [round(100 * r["share"], 1) for r in rows],
        "Base rate": [None if r["base_rate"] is None else round(100 * r["base_rate"], 1) for r in rows],
        "Missing values": [round(100 * r["missing_rate"], 1) for r in rows],
    })


def _missing_gap(attribute: str, rows: list[dict]) -> None:
    """Point out missing values that fall unevenly on groups (5 points or more apart)."""
    rates = [(r["missing_rate"], r["group"]) for r in rows]
    (low, low_group), (high, high_group) = min(rates), max(rates)
    if high - low >= 0.05:
        st.info(f"Missing values fall unevenly on the groups of {md(attribute)}: {fmt_pct(high)} of cells are "
                f"empty for {md(high_group)}, {fmt_pct(low)} for {md(low_group)}. How missing values are "
                f"filled in can then affect the groups differently.", icon=":material/grid_off:")


def proxy_sentence(finding: dict) -> str:
    """'relationship tells a lot about sex (association 0.65 on a scale of 0 to 1): removing sex would
    not blind a model.' The measure's name (Cramér's V) stays in the CSV download's column name."""
    feature, attribute = md(finding["feature"]), md(finding["attribute"])
    link = f"association {fmt_num(finding['cramers_v'])} on a scale of 0 to 1"
    if finding["strength"] == "strong":
        return (f"**{feature}** tells a lot about **{attribute}** ({link}): "
                f"removing {attribute} would not blind a model.")
    return (f"**{feature}** tells something about **{attribute}** ({link}): "
            f"removing {attribute} would only partly blind a model.")


def show_proxies(findings: list[dict]) -> None:
    st.markdown("A **proxy** is a feature that carries information about a sensitive attribute. A model can "
                "learn the attribute from its proxies, so leaving the attribute out does not make the model "
                "blind to it. The association below runs from 0 (the feature says nothing about the attribute) "
                "to 1 (the feature gives the attribute away).")
    if not findings:
        st.success("No proxies found: no feature is clearly linked to a sensitive attribute (every association "
                   f"is below {MODERATE:g}).", icon=":material/check_circle:")
        return
    strong = [f for f in findings if f["strength"] == "strong"]
    moderate = [f for f in findings if f["strength"] != "strong"]
    if strong:
        st.warning(bullets([proxy_sentence(f) for f in strong]), icon=":material/visibility:")
    if moderate:
        st.info(bullets([proxy_sentence(f) for f in moderate]), icon=":material/visibility:")
    st.download_button("Download proxy measurements (CSV, exact values)", csv_bytes(pd.DataFrame(findings)),
                       file_name="proxies.csv", mime="text/csv", key="download_proxies", icon=":material/download:")
