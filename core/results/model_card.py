"""The report's first page shaped like a model card (Mitchell et al. 2019), as data.

    model_card(report, *, study_name, framing, notes, sign_off) -> {"title", "sections": [...]}

The sections, in the paper's order: intended use, factors, metrics, evaluation data, training
data, quantitative analyses, ethical considerations, caveats and recommendations. Each is filled
from the study (its name and the reviewer's framing: what the outcome does to the person, the
chosen measure and why), the audit (report.json) and the reviewer's notes; the report draws it
as the element with id="model-card", after the scorecard. A missing answer says where to give it
rather than being left blank.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.audit.multiplicity import PRACTICAL_FLOOR
from core.results.folder import ReportView
from core.results.formatting import fmt_int, fmt_num, fmt_pct, is_number
from core.results.measure_choice import choose_measure
from core.results.quality import quality_of
from core.results.scorecard import outcome_effect_of, scorecard
from core.results.summary import ONE_RUN_NOTICE
from core.results.wording import OUTCOME_EFFECT_WORDS, model_label

_HASH_PREFIX = re.compile(r"^[0-9a-f]{12,64}-")


def study_title(report: Mapping, study_name: str | None = None) -> str:
    """The study's name; without one, the dataset's name without the upload's content-hash prefix
    and extension ("c6982b28e80bf1ac-arrests.csv" -> "arrests"), never the internal file name."""
    if study_name and str(study_name).strip():
        return str(study_name).strip()
    dataset = str((report.get("study") or {}).get("dataset") or "dataset")
    stem = _HASH_PREFIX.sub("", dataset)
    return re.sub(r"\.(csv|tsv|txt|parquet|xlsx?|json)$", "", stem, flags=re.IGNORECASE) or dataset


def measure_of(framing: Mapping | None, outcome_effect: str | None) -> dict[str, Any]:
    """The study's headline measure and its rationale, from the reviewer's answers (core.results.measure_choice)."""
    framing = framing or {}
    return choose_measure(outcome_effect, framing.get("costlier_error"), framing.get("scarce"))


def _section(key: str, title: str, lines: list[str]) -> dict:
    return {"key": key, "title": title, "lines": [line for line in lines if line]}


def model_card(report: dict, *, study_name: str | None = None, framing: Mapping | None = None,
               notes: list[dict] | None = None, sign_off: Mapping | None = None) -> dict:
    """{"title", "sections": [{"key", "title", "lines"}]} (module docstring)."""
    view, framing = ReportView(report), dict(framing or {})
    study = view.study
    effect = outcome_effect_of(view, framing.get("outcome_effect"))
    measure = measure_of(framing, effect)
    answers = scorecard(report, outcome_effect=effect, measure=measure["measure"])["answers"]
    positive = f"\u201c{view.positive_label}\u201d"
    first = view.first_model
    intended = framing.get("intended_use") or ""
    groups = []
    for attribute in view.sensitive:
        rows = first.groups(attribute) if first else []
        sizes = ", ".join(f"{r.get('group')} ({fmt_int(r.get('n'))})" for r in rows[:8])
        groups.append(f"{attribute}: {len(rows)} groups in the test rows: {sizes}{' ...' if len(rows) > 8 else ''}.")
    flagged = [f"{model_label(m.entry)} {quality_of(view, m)['badge']}." for m in view.models
               if quality_of(view, m)["flag"] is not None]
    reviewer = [f"{n.get('author') or 'reviewer'} ({n.get('status') or 'note'}): {n.get('body') or n.get('text') or ''}"
                for n in (notes or [])[:3]]
    small = [f"{p}: {', '.join(map(str, first.gaps(p).get('small_groups') or []))}" for p in view.partitions
             if first and first.gaps(p).get("small_groups")]
    sections = [
        _section("intended_use", "Intended use", [
            intended or "Not stated yet: the reviewer records it on the Review & report page.",
            f"The models predict {study.get('target', 'the target')} = {positive}; the reviewer says this outcome "
            f"{OUTCOME_EFFECT_WORDS[effect]}." if effect else
            f"The models predict {study.get('target', 'the target')} = {positive}. Whether this outcome helps or harms "
            "the person is not stated, so the report does not say who is favoured."]),
        _section("factors", "Factors", [f"Groups compared by {', '.join(view.sensitive)}"
                                        f"{' and their intersections' if view.intersections else ''}.", *groups]),
        _section("metrics", "Metrics", [
            f"Headline measure: {measure['measure_name']}. {measure['rationale']}",
            "Accuracy and ROC AUC for how well each model predicts; each number has a "
            f"{fmt_pct(view.confidence or 0.95, 0)} interval. Verdicts against the ordinary model are decided on "
            f"p-values Holm-adjusted within their family, over {view.replicates} training "
            f"run{'s' if view.replicates != 1 else ''}. Differences below {fmt_num(PRACTICAL_FLOOR)} are never a "
            "finding."]),
        _section("evaluation_data", "Evaluation data", [
            f"{fmt_int(study.get('n_test'))} test rows held out from training, the same for every model "
            f"(dataset {study_title(report)}, SHA-256 {str(study.get('dataset_sha256') or 'n/a')[:12]}...)."]),
        _section("training_data", "Training data", [
            "The models were trained outside Equiscope (uploaded predictions or a model file): their training data "
            "are not known here." if not view.trained else
            f"{fmt_int(study.get('n_train'))} labelled rows ({fmt_pct(view.label_fraction, 0)} of the training rows "
            f"keep their label), {fmt_int(study.get('n_validation'))} validation rows, and "
            f"{fmt_int(study.get('n_pretrain'))} rows for self-supervised pretraining without labels; "
            f"{len(study.get('features') or [])} input columns.",
            (f"Withheld as personal data: {', '.join(map(str, view.withheld_columns))}." if view.withheld_columns
             else "No column was withheld as personal data (none found).")]),
        _section("quantitative_analyses", "Quantitative analyses", [
            "The scorecard above, one row per model; every measure, per group, in the appendix.", *answers]),
        _section("ethical_considerations", "Ethical considerations", [
            *[f"Proxy: '{p.get('feature')}' stands in for {p.get('attribute')}." for p in view.proxies
              if isinstance(p, dict) and p.get("strength") == "strong"],
            *flagged, *reviewer,
            (f"Signed off by {sign_off.get('author')}: {sign_off.get('body') or sign_off.get('text') or ''}"
             if sign_off else "Not signed off yet.")]),
        _section("caveats", "Caveats and recommendations", [
            ONE_RUN_NOTICE if view.one_training_run else "",
            *[f"Small groups (fewer than {view.min_group_size} test rows), very uncertain: {s}." for s in small[:4]],
            *[str(w) for w in view.warnings]]),
    ]
    return {"title": study_title(report, study_name), "sections": sections, "measure": measure,
            "outcome_effect": effect}
