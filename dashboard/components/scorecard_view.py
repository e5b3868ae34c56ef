"""The scorecard on the Fairness and Compare pages, and the study's framing that shapes it.

It draws core.results.scorecard as an HTML table (plain labels, with the code name as the hover
title; one interval per gap; the sentence of who is favoured; the audit's verdict), and the
three questions of core.results.measure_choice, whose answers are kept with the study
(Workspace.set_study_framing). No number is computed here.
"""

from __future__ import annotations

from html import escape

import streamlit as st

from core.results.folder import ReportView
from core.results.measure_choice import COSTLIER_ERRORS
from core.results.model_card import measure_of
from core.results.scorecard import outcome_effect_of, scorecard
from core.results.wording import OUTCOME_EFFECT_WORDS, floor_words
from core.workspace.store import StudyRecord, Workspace
from dashboard.components.format import md

_NOT_SAID = "not said"
VERDICT_COLOURS = {"narrowed": "#1d7a4a", "widened": "#b42318"}


def framing_section(ws: Workspace, study: StudyRecord, report: dict, key: str) -> dict:
    """The three questions, answered once per study and kept with it; returns the framing with the
    chosen measure ("measure", "rationale")."""
    framing = dict(study.get("framing") or {})
    effect = outcome_effect_of(ReportView(report), framing.get("outcome_effect"))
    # one label whatever the answer: a label that changes makes a new expander, which jumps open or shut
    with st.expander("Who is favoured, and which fairness measure leads", expanded=effect is None,
                     icon=":material/balance:"):
        positive = md(str((report.get("study") or {}).get("positive_label")))
        options = ["helps", "harms", _NOT_SAID]
        chosen = st.radio(f"For the person it is given to, the outcome \u201c{positive}\u201d\u2026", options,
                          index=options.index(effect or _NOT_SAID), key=f"{key}_effect", horizontal=True,
                          format_func=lambda o: OUTCOME_EFFECT_WORDS.get(o, "not said"))
        errors = [_NOT_SAID, "alike", "given", "denied"]  # not said: the outcome's effect decides
        costlier = st.radio("Which error costs the person more?", errors,
                            index=errors.index(framing.get("costlier_error") or _NOT_SAID), key=f"{key}_costlier",
                            format_func=lambda o: COSTLIER_ERRORS.get(o, "not said"), horizontal=True)
        scarce = st.checkbox("The intervention is scarce (only a few can get it)", value=bool(framing.get("scarce")),
                             key=f"{key}_scarce")
        new = {**framing, "outcome_effect": None if chosen == _NOT_SAID else chosen,
               "costlier_error": None if costlier == _NOT_SAID else costlier, "scarce": scarce}
        if any(new[k] != framing.get(k, False if k == "scarce" else None) for k in new):  # only a real change
            ws.set_study_framing(study["id"], new)
            framing = new
        choice = measure_of(framing, framing.get("outcome_effect"))
        st.markdown(f"**Headline measure: {choice['measure_name']}.** {choice['rationale']}")
    return {**framing, "measure": choice["measure"], "rationale": choice["rationale"]}


def measure_of_study(study: StudyRecord) -> dict:
    """The study's headline measure from its kept framing (as framing_section returns it, without widgets)."""
    framing = study.get("framing") or {}
    choice = measure_of(framing, framing.get("outcome_effect"))
    return {"measure": choice["measure"], "rationale": choice["rationale"]}


def _cell(text: str, title: str = "", style: str = "") -> str:
    title_attr = f' title="{escape(title)}"' if title else ""
    style_attr = f' style="{style}"' if style else ""
    return f"<td{title_attr}{style_attr}>{text}</td>"


def scorecard_table(card: dict, run_name: str | None = None) -> str:
    """The scorecard as an HTML table (every text escaped); one row per model."""
    head = ["Model", "Accuracy", "ROC AUC"] + [escape(a) for a in card["attributes"]] + ["Worst-off group"]
    rows = []
    for row in card["rows"]:
        badge = (f"<br><span style='color:#b42318;font-size:0.85em'>\u26a0 {escape(row['badge'])}</span>"
                 if row["badge"] else "")
        prefix = f"{escape(run_name)}: " if run_name else ""
        cells = [_cell(f"{prefix}{escape(row['label'])}{badge}", row["title"]),
                 _cell(f"{row['accuracy']['text']}<br><small>{row['accuracy']['ci_text']}"
                       + (f"<br>{row['accuracy_vs_baseline_text']} vs best baseline"
                          if row["accuracy_vs_baseline_text"] else "") + "</small>"),
                 _cell(f"{row['roc_auc']['text']}<br><small>{row['roc_auc']['ci_text']}"
                       + (f"<br>{row['auc_vs_baseline_text']} vs best baseline" if row["auc_vs_baseline_text"]
                          else "<br>best baseline" if row["is_baseline"] else "") + "</small>")]
        for attribute in card["attributes"]:
            gap, verdict = row["gaps"][attribute], row["verdicts"][attribute]
            colour = VERDICT_COLOURS.get(verdict["verdict"], "#52606d")
            small = f"<br><small>\u26a0 {escape(gap['small'])}</small>" if gap["small"] else ""
            cells.append(_cell(f"<b>{gap['text']}</b> ({gap['ci_text'] or 'no interval'})<br>"
                               f"<small>{escape(gap['sentence'])}</small>{small}<br>"
                               f"<small style='color:{colour}'>{escape(verdict['text'])}</small>"))
        worst = row["worst"]
        cells.append(_cell(f"{escape(worst['attribute'])} \u201c{escape(str(worst['group']))}\u201d: {worst['text']}"
                           f"<br><small>{worst['ci_text']}{', a small group' if worst['small'] else ''}</small>"
                           if worst else ""))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return (f"<table class='equiscope-scorecard'><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}"
            "</tbody></table>")


def scorecard_section(report: dict, framing: dict, run_name: str | None = None) -> dict:
    """The meeting's answers and the scorecard of one run; returns the scorecard data."""
    card = scorecard(report, outcome_effect=framing.get("outcome_effect"), measure=framing.get("measure"))
    for line in card["answers"]:
        st.markdown(f"- {md(line)}")
    st.markdown(scorecard_table(card, run_name), unsafe_allow_html=True)
    st.caption(f"One row per model; hover a model for its code name. Gap: {card['measure_name'].lower()} with its "
               f"{round(100 * (card['confidence'] or 0.95))}% interval; the verdict compares it with the ordinary "
               f"model on the same test rows (Holm-adjusted). {floor_words()}")
    return card
