"""`equiscope inspect`: what a table holds and what risks it carries, before any training."""

from __future__ import annotations

import argparse

from core.cli.main import print_json
from core.cli._format import percent, text_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="a bundled dataset name or a CSV/Parquet/Excel path")
    parser.add_argument("--target", help="the outcome column; adds group sizes and base rates")
    parser.add_argument("--positive", help="the target value that counts as positive, or a threshold on a numeric "
                        "target: '>=10' (also '>', '<=', '<')")
    parser.add_argument("--sensitive", help="comma-separated sensitive attributes "
                                            "(default: the dataset card's, or columns named like sex, race, age)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    from core.data import (DatasetSpec, find_proxies, open_source, prepare, profile_columns, profile_groups,
                           scan_pii)
    from core.data.kinds import infer_kinds

    source = open_source(args.data)
    frame = source.frame
    kinds = infer_kinds(frame)
    pii = scan_pii(frame)
    report: dict = {"dataset": source.name, "sha256": source.sha256, "rows": len(frame),
                    "columns": profile_columns(frame, kinds, {f.column: f.kind for f in pii}),
                    "pii": [f.to_dict() for f in pii], "notes": list(source.notes)}
    target = args.target or (source.card.target if source.card and args.target is None else None)
    if target:
        sensitive = _sensitive(args, source, frame)
        positive = args.positive or (str(source.card.positive_label) if source.card and target == source.card.target
                                     else None)
        data = prepare(frame, DatasetSpec(target=target, sensitive=tuple(sensitive), positive_label=positive))
        report.update(target=target, positive_label=data.spec.positive_label, sensitive=sensitive,
                      groups=profile_groups(data),
                      proxies=[p.to_dict() for p in find_proxies(frame[data.features], data.groups)],
                      warnings=data.warnings)
        report["notes"] += data.notes
    if args.json:
        print_json(report)
    else:
        print(_as_text(report))
    return 0


def _sensitive(args: argparse.Namespace, source, frame) -> list[str]:
    if args.sensitive:
        return [s.strip() for s in args.sensitive.split(",") if s.strip()]
    if source.card:
        return list(source.card.sensitive)
    from core.data.spec import suggest_sensitive

    return suggest_sensitive(frame)


def _as_text(report: dict) -> str:
    out = [f"{report['dataset']}: {report['rows']:,} rows x {len(report['columns'])} columns "
           f"(sha256 {report['sha256'][:12]}...)", "", "Columns"]
    rows = [[c["column"], c["kind"], f"{c['n_missing']:,} ({percent(c['missing_rate'])})", f"{c['n_unique']:,}",
             c["pii"] or "", c["summary"]] for c in report["columns"]]
    out.append(text_table(rows, ["column", "kind", "missing", "distinct", "personal data", "summary"]))
    if report["pii"]:
        out += ["", "Personal data (left out of training and reports unless you opt in)"]
        out += [f"  {f['column']}: {f['kind']} ({f['reason']})" for f in report["pii"]]
    if "groups" in report:
        out += ["", f"Groups (target '{report['target']}', positive '{report['positive_label']}')"]
        for attribute, groups in report["groups"].items():
            rows = [[g["group"], f"{g['n']:,}", percent(g["share"]), percent(g["base_rate"]),
                     percent(g["missing_rate"]), "small" if g["small"] else ""] for g in groups]
            out += [f"  {attribute}", text_table(rows, ["group", "rows", "share", "base rate", "missing", ""],
                                                 indent="    ")]
        out += ["", "Possible proxies (features associated with a sensitive attribute; Cramér's V)"]
        out += [f"  {p['attribute']} ~ {p['feature']}: {p['cramers_v']:.2f} ({p['strength']})"
                for p in report["proxies"]] or ["  none at V >= 0.3"]
    for title, key in (("Warnings", "warnings"), ("Notes", "notes")):
        if report.get(key):
            out += ["", title] + [f"  - {line}" for line in report[key]]
    return "\n".join(out)
