"""The stakeholder report: one self-contained HTML file (the PDF is core.results.pdf).

    render_html(report, *, embeddings, notes, sign_off, study_name, framing, previous) -> str
    write_html_report(report, out_dir, *, notes=None, sign_off=None) -> Path   (out_dir/report.html)

Self-contained means: plotly.js is inlined once in <head>, every figure is a `<div>` plus a
`Plotly.newPlot` call on inline JSON (core.results.figures), CSS is inline, fonts are the
system's. Opening the file makes no request of any kind (tested in Chromium with every request
counted).

What goes in: the report.json dict (aggregates only) and, for the UMAP maps, the 2-D
coordinates with the group label of the first sensitive attribute per row (no row ids, no
feature values). Texts that come from users (review notes, group and column names) are
escaped by Jinja2's autoescape in tables and by plotly's JSON encoder (which writes `<` as
`\\u003c`) inside figures. The section list and the summary rules are in docs/report.md.

The five-minute read comes first: the scorecard (core.results.scorecard, `id="scorecard"`) and
the model card (core.results.model_card, `id="model-card"`), titled with the study's name, then,
when an earlier audit of the same study is given, what changed; everything else is the appendix.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import ChainableUndefined, Environment, FileSystemLoader
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from core.files import atomic_write
from core.results.figures import (UMAP_MAX_POINTS, gap_figure, leakage_figure, loss_figure, subsample_embeddings,
                                  umap_figure)
from core.results.formatting import ci_label, fmt_ci, fmt_int, fmt_num, fmt_pct, is_number
from core.results.palette import model_colours
from core.results.quality import quality_of
from core.results.compare import audit_changes
from core.results.model_card import model_card
from core.results.scorecard import scorecard
from core.results.summary import summarize
from core.results.tradeoff_figures import report_section as mitigation_section
from core.results.federated_sites import federated_findings
from core.results.privacy_figures import report_section as privacy_section
from core.results.wording import comparison_verdict, floor_words
from core.results.folder import HTML_REPORT, ModelView, ReportView, load_embeddings, section
from core.vocabulary import METRIC_NAMES, NOT_AVAILABLE, UNDEFINED_WHY

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: The per-group tables of the report, in their order (the dashboard shows more).
GROUP_TABLE_METRICS = ("accuracy", "tpr", "fpr", "selection_rate")
#: The gaps of a partition's table, each with its interval.
GAP_TABLE_GAPS = ("equalized_odds_difference", "demographic_parity_difference", "equal_opportunity_difference",
                  "accuracy_difference")


# -- table contents -----------------------------------------------------------------------------
def _undefined(metric: str) -> str:
    """The tooltip of an undefined value: why the metric can be undefined, when that is known."""
    return f"undefined: {UNDEFINED_WHY[metric]}" if metric in UNDEFINED_WHY else ""


def _cell(value: Any, ci: Any = None, *, pct: bool = False, why: str = "") -> dict:
    """A table cell: main text, interval text, and a tooltip for undefined values."""
    fmt = fmt_pct if pct else fmt_num
    if not is_number(value):
        return {"text": NOT_AVAILABLE, "ci": "", "title": why or "undefined", "na": True}
    return {"text": fmt(value), "ci": fmt_ci(ci, fmt) if ci else "", "title": "", "na": False}


def _worst_group(view: ReportView, model: ModelView) -> tuple[float, Any, str] | None:
    """(accuracy, interval, "attribute “group”") of the model's lowest-accuracy group of a single attribute."""
    worst = None
    for attribute in view.sensitive:
        value = model.gaps(attribute).get("worst_group_accuracy")
        if is_number(value) and (worst is None or value < worst[0]):
            group = model.between(attribute, "worst_group_accuracy").get("min_group")
            worst = (value, model.gap_ci(attribute, "worst_group_accuracy"), f"{attribute} \u201c{group}\u201d")
    return worst


def _model_rows(view: ReportView, colours: dict[str, str]) -> list[dict]:
    rows = []
    for model in view.models:
        overall, ci = model.overall, model.overall_ci
        worst = _worst_group(view, model)
        rows.append({"name": model.name, "colour": colours[model.name],
                     "pretraining": model.pretraining or "none", "strategy": model.strategy or "",
                     "params": fmt_int(model.n_trainable_params),
                     "accuracy": _cell(overall.get("accuracy"), ci.get("accuracy"), pct=True),
                     "balanced_accuracy": _cell(overall.get("balanced_accuracy"), ci.get("balanced_accuracy")),
                     "roc_auc": _cell(overall.get("roc_auc"), ci.get("roc_auc"), why=_undefined("roc_auc")),
                     "selection_rate": _cell(overall.get("selection_rate"), ci.get("selection_rate"), pct=True),
                     "worst": _cell(worst[0], worst[1], pct=True) if worst else _cell(None),
                     "worst_group": worst[2] if worst else "", "degenerate": quality_of(view, model)["badge"]})
    return rows


def _delta(model: ModelView, partition: str, gap: str) -> dict | None:
    compared = model.compared(partition, gap)
    if not compared:
        return None
    diff, ci = compared.get("difference"), compared.get("ci")
    verdict = comparison_verdict(compared)  # the family-adjusted test, then the practical floor
    if verdict is None:
        return {"text": NOT_AVAILABLE, "ci": "", "verdict": "not comparable", "cls": "na"}
    if verdict in ("no clear difference", "too small to matter"):
        return {"text": fmt_num(diff), "ci": fmt_ci(ci), "verdict": verdict, "cls": "unclear"}
    return {"text": fmt_num(diff), "ci": fmt_ci(ci), "verdict": verdict, "cls": verdict}


def _gap_rows(view: ReportView, partition: str, colours: dict[str, str]) -> list[dict]:
    rows = []
    for model in view.models:
        gaps = model.gaps(partition)
        cells = {gap: _cell(gaps.get(gap), model.gap_ci(partition, gap)) for gap in GAP_TABLE_GAPS}
        rows.append({"name": model.name, "colour": colours[model.name], **cells,
                     "eo_between": _between_text(model.between(partition, "equalized_odds_difference")),
                     "dp_between": _between_text(model.between(partition, "demographic_parity_difference")),
                     "eo_delta": _delta(model, partition, "equalized_odds_difference"),
                     "dp_delta": _delta(model, partition, "demographic_parity_difference"),
                     "worst": _cell(gaps.get("worst_group_accuracy"), model.gap_ci(partition, "worst_group_accuracy"),
                                    pct=True),
                     "worst_group": model.between(partition, "worst_group_accuracy").get("min_group") or "",
                     "di_ratio": _cell(gaps.get("min_disparate_impact_ratio")),
                     "four_fifths": bool(gaps.get("four_fifths_flag"))})
    return rows


def _between_text(between: dict) -> str:
    if not between.get("max_group") or not between.get("min_group"):
        return ""
    metric = {"tpr": "TPR", "fpr": "FPR", "selection_rate": "selection rate"}.get(between.get("metric"), "")
    return f"{metric}: \u201c{between['max_group']}\u201d above \u201c{between['min_group']}\u201d"


def _group_tables(view: ReportView, partition: str) -> dict:
    first_rows = view.first_model.groups(partition) if view.first_model else []
    groups = [{"group": r.get("group"), "n": fmt_int(r.get("n")), "small": bool(r.get("small")),
               "base_rate": (fmt_pct(r["n_positive"] / r["n"]) if is_number(r.get("n_positive")) and r.get("n")
                             else NOT_AVAILABLE)}
              for r in first_rows]
    tables = []
    for metric in GROUP_TABLE_METRICS:
        body = []
        for group in groups:
            cells = []
            for model in view.models:
                row = model.group(partition, group["group"]) or {}
                cells.append(_cell(row.get(metric), section(row, "ci").get(metric), pct=True,
                                   why=_undefined(metric)))
            body.append({**group, "cells": cells})
        tables.append({"metric": metric, "title": METRIC_NAMES[metric], "rows": body})
    return {"partition": partition, "tables": tables, "n_small": sum(g["small"] for g in groups),
            "n_groups": len(groups)}


def _leakage_rows(view: ReportView, colours: dict[str, str]) -> list[dict]:
    rows = []
    for attribute in view.sensitive:
        for model in view.models:
            probe = model.probe(attribute)
            if not probe:
                continue
            cka = model.representation_of("cka_with_supervised", attribute)
            knn = model.representation_of("knn_accuracy", attribute)
            rows.append({"attribute": attribute, "name": model.name, "colour": colours[model.name],
                         "embedding": fmt_num(probe.get("balanced_accuracy")), "std": fmt_num(probe.get("std")),
                         "interval": fmt_ci(probe.get("interval")), "readable": _can(probe.get("readable")),
                         "raw": fmt_num(probe.get("raw_features_balanced_accuracy")),
                         "without": fmt_num(probe.get("raw_features_without_attribute_balanced_accuracy")
                                            if probe.get("raw_features_without_attribute_n_dropped") else None),
                         "chance": fmt_num(probe.get("chance")), "note": probe.get("note") or "",
                         "knn": fmt_pct(knn.get("overall")),
                         "cka": "\u2014" if model.is_supervised else fmt_num(cka.get("overall"))})
    return rows


def _can(readable: bool | None) -> str:
    """The leakage verdict in the report's words; runs stored without a fold interval have none."""
    return "" if readable is None else ("a linear probe can read it" if readable else "a linear probe cannot read it")


def summary_blocks(items: list[dict]) -> list[dict]:
    """The summary for display: each paired comparison under its tally line, the per-model
    worst-group lines under one heading; everything else as it comes."""
    blocks: list[dict] = []
    for item in items:
        topic = item.get("topic")
        if topic == "ssl_vs_supervised" and blocks and blocks[-1]["topic"] == "ssl_tally":
            blocks[-1]["children"].append(item)
        elif topic == "worst_group":
            if not blocks or blocks[-1]["topic"] != "worst_group":
                blocks.append({"level": "info", "topic": "worst_group", "children": [],
                               "text": "Worst-group accuracy: the lowest accuracy of any group of a single attribute, "
                                       "per model."})
            blocks[-1]["children"].append(item)
        else:
            blocks.append({**item, "children": []})
    return blocks


def _config_rows(config: dict) -> list[tuple[str, str]]:
    return [(key, value if isinstance(value, str) else json.dumps(value, sort_keys=True))
            for key, value in config.items()]


def _notes(notes: list[dict] | None) -> list[dict]:
    out = []
    for note in notes or []:
        out.append({"author": str(note.get("author") or "unknown"), "status": str(note.get("status") or ""),
                    "time": str(note.get("time") or note.get("created_at") or ""),
                    "text": str(note.get("text") if note.get("text") is not None else note.get("body") or ""),
                    "run": str(note.get("run_id") or "")})
    return out


def _sign_off(sign_off: dict | None) -> dict | None:
    return _notes([sign_off])[0] if sign_off else None


def _umap(view: ReportView, embeddings: pd.DataFrame | None, colours: dict[str, str]) -> dict | None:
    """The maps' figure and caption numbers; None without embeddings."""
    if embeddings is None or not len(embeddings):
        return None
    shown, total = subsample_embeddings(embeddings, UMAP_MAX_POINTS, view.seed)
    sensitive = view.sensitive
    attribute = sensitive[0] if sensitive and sensitive[0] in shown else None
    return {"figure": umap_figure(view, shown, attribute, colours, "umap"), "shown": fmt_int(min(total, UMAP_MAX_POINTS)),
            "total": fmt_int(total), "subsampled": total > UMAP_MAX_POINTS, "attribute": attribute,
            "max": fmt_int(UMAP_MAX_POINTS)}


# -- rendering -----------------------------------------------------------------------------------
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=ChainableUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def _changes(previous: tuple[str, dict] | None, report: dict, measure: str) -> dict | None:
    """Two audits of the same study side by side (core.results.compare.audit_changes), for reading."""
    if not previous:
        return None
    name, earlier = previous
    rows = [{**row, "before_text": fmt_num(row["before"]), "before_ci_text": fmt_ci(row["before_ci"]),
             "after_text": fmt_num(row["after"]), "after_ci_text": fmt_ci(row["after_ci"]),
             "change_text": fmt_num(row["change"])} for row in audit_changes(earlier, report, measure)]
    return {"name": name, "rows": rows}


def render_html(report: dict, *, embeddings: pd.DataFrame | None = None, notes: list[dict] | None = None,
                sign_off: dict | None = None, generated_at: datetime | None = None, study_name: str | None = None,
                framing: dict | None = None, previous: tuple[str, dict] | None = None) -> str:
    """The report as one self-contained HTML string.

    `embeddings`: columns row_id, model, umap_x, umap_y and, to colour the maps, the first
    sensitive attribute (one group label per row); None leaves the maps out. `notes`: review
    notes as the store lists them (author, status, created_at or time, body or text);
    `sign_off`: the note that records the decision, same keys.
    """
    view = ReportView(report)
    colours = model_colours(view.model_names)
    sensitive = view.sensitive
    partitions = sensitive + view.intersections
    first = view.first_model
    generated = (generated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    card = model_card(report, study_name=study_name, framing=framing, notes=notes, sign_off=sign_off)
    measure = card["measure"]["measure"]
    context = {
        "title": card["title"], "card": card, "changes": _changes(previous, report, measure),
        "scorecard": scorecard(report, outcome_effect=card["outcome_effect"], measure=measure),
        "report": report, "study": view.study, "summary": summary_blocks(summarize(report)),
        "ci_label": ci_label(view.confidence), "colours": colours, "models": _model_rows(view, colours), "sensitive": sensitive,
        "partitions": [{"key": p, "figure": gap_figure(view, p, colours, f"gap-{i}"),
                        "rows": _gap_rows(view, p, colours),
                        "small": (first.gaps(p).get("small_groups") or []) if first else []}
                       for i, p in enumerate(partitions)],
        "group_tables": [_group_tables(view, p) for p in partitions], "model_names": view.model_names,
        "umap": _umap(view, embeddings, colours), "leakage": leakage_figure(view, colours, "leakage"),
        "leakage_rows": _leakage_rows(view, colours),
        "loss": loss_figure(view, "loss"), "pretraining": view.pretraining,
        "notes": _notes(notes), "sign_off": _sign_off(sign_off),
        "config_rows": _config_rows(view.config),
        "versions": view.versions, "bootstrap": view.bootstrap,
        "withheld": [str(c) for c in view.withheld_columns],
        "data_notes": [str(n) for n in view.notes],
        "data_warnings": [str(w) for w in view.warnings],
        "generated": generated.strftime("%Y-%m-%d %H:%M UTC"),
        "plotly_js": Markup(get_plotlyjs()), "fmt_pct": fmt_pct, "fmt_num": fmt_num, "fmt_int": fmt_int,
        "min_group_size": view.min_group_size, "min_class_rows": view.config.get("min_class_rows", 10),
        # a model no better than chance (core.results.quality) is flagged wherever its numbers are shown
        "flags": {m.name: quality_of(view, m)["badge"] for m in view.models},
        # issue 18: what each mitigation bought and cost, on the first attribute's headline measure
        "mitigations": mitigation_section(report, sensitive[0], measure) if sensitive else None,
        # issue 19: what federated pretraining cost, overall and per group (Holm-adjusted verdicts)
        "federated": federated_findings(report), "floor_words": floor_words(),
        "privacy": privacy_section(report),  # issue 19: what each privacy guarantee cost, and whom
    }
    return _environment().get_template("report.html.j2").render(**context)


def write_html_report(report: dict, out_dir: Path, *, notes: list[dict] | None = None,
                      sign_off: dict | None = None, study_name: str | None = None) -> Path:
    """Render the report of the run in `out_dir` (using its embeddings.parquet when present) into
    `out_dir/report.html`, atomically; returns the path."""
    out_dir = Path(out_dir)
    sensitive = ReportView(report).sensitive
    embeddings = load_embeddings(out_dir, sensitive[0] if sensitive else None)
    html = render_html(report, embeddings=embeddings, notes=notes, sign_off=sign_off, study_name=study_name)
    path = out_dir / HTML_REPORT
    atomic_write(path, html)
    return path
