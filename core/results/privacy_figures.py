"""The epsilon curve, one build for the Compare page and the HTML report
(core.results.privacy_cost gives its numbers):

    epsilon_figure(curve, attributes)   accuracy and each attribute's worst-group accuracy against
                                        epsilon (log axis, strongest guarantee on the left), error
                                        bars from the replicate-aware intervals, and the model
                                        without privacy as a dashed line with its interval band
    report_section(report)              the figures as self-contained divs and the sentences, for the
                                        HTML report (None without private models)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from markupsafe import Markup

from core.results.figures import _axis, _error_bars, _fig_html, _layout
from core.results.formatting import is_number
from core.results.privacy_cost import epsilon_curve, strongest_guarantee_sentences
from core.results.wording import floor_words

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def _series(points: Sequence[Mapping[str, Any]], pick) -> tuple[list, list, list]:
    private = [p for p in points if p["epsilon"] is not None]
    values = [pick(p) or {} for p in private]
    return [p["epsilon"] for p in private], [v.get("mean") for v in values], [v.get("ci") for v in values]


def epsilon_figure(curve: Mapping[str, Any], attributes: Sequence[str]) -> go.Figure:
    """One private model family (a base and its private versions) against epsilon."""
    figure = go.Figure()
    lines = [("Accuracy", lambda p: p["accuracy"])]
    lines += [(f"Worst-group accuracy ({a})", lambda p, a=a: p["worst_group_accuracy"].get(a)) for a in attributes]
    base = next((p for p in curve["points"] if p["epsilon"] is None), None)
    for (title, pick), colour in zip(lines, COLOURS):
        x, y, cis = _series(curve["points"], pick)
        plus, minus = _error_bars(y, cis)
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=title, line={"color": colour},
                                    error_y={"type": "data", "array": plus, "arrayminus": minus, "visible": True},
                                    hovertemplate="epsilon %{x}<br>%{y:.3f}<extra>" + title + "</extra>"))
        mean = (pick(base) or {}).get("mean") if base else None
        if is_number(mean) and x:
            figure.add_trace(go.Scatter(x=[min(x), max(x)], y=[mean, mean], mode="lines", showlegend=False,
                                        line={"color": colour, "dash": "dash", "width": 1},
                                        hovertemplate=f"without privacy: {mean:.3f}<extra>{title}</extra>"))
    figure.update_layout(**_layout(title={"text": f"{curve['base_label']}: what each guarantee costs "
                                                  "(dashed: without privacy)", "font": {"size": 13}},
                                   legend={"orientation": "h", "y": -0.25}))
    epsilons = sorted({p["epsilon"] for p in curve["points"] if p["epsilon"] is not None})
    figure.update_xaxes(**_axis(type="log", title="epsilon (smaller: stronger privacy)"),
                        tickvals=epsilons, ticktext=[f"{e:g}" for e in epsilons])
    figure.update_yaxes(**_axis(title="accuracy on the test rows"))
    return figure


def report_section(report: Mapping[str, Any]) -> dict | None:
    """{"figures": [div], "sentences": [str], "floor_words"} for the HTML report, or None."""
    curves = epsilon_curve(report)
    if not curves:
        return None
    attributes = list((report.get("study") or {}).get("sensitive") or [])
    divs: list[Markup] = [_fig_html(epsilon_figure(curve, attributes), f"privacy-{i}", 380)
                          for i, curve in enumerate(curves)]
    return {"figures": divs, "sentences": strongest_guarantee_sentences(report), "floor_words": floor_words()}
