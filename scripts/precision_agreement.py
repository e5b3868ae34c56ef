"""Whether two audits of the same study, one trained in fp32 and one in bf16, say the same thing
(issue 15, "mixed precision where the hardware has it"; figures in docs/performance.md).

    equiscope audit --data adult --target income --sensitive sex,race --precision fp32 --out A
    equiscope audit --data adult --target income --sensitive sex,race --precision bf16 --out B
    .venv/bin/python scripts/precision_agreement.py A/report.json B/report.json

For every model both reports hold, and for accuracy, balanced accuracy and the headline gaps
(core.vocabulary.HEADLINE_GAPS) of every sensitive attribute alone: each report's replicate mean
must lie inside the other's replicate-aware interval (`aggregate`: training replicates and test
rows together, docs/interfaces.md). Prints one line per cell that does not, and a count; exit 1
if any cell disagrees or a report has fewer than 2 replicates (then its intervals cover the test
rows only and the check would claim more than it shows). Then the paired comparisons with the
supervised baseline (`compared_with_supervised`, every family): each verdict
(core.results.wording.comparison_verdict) in both; a finding ("narrowed", "widened") on one side
only also fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.results.wording import comparison_verdict
from core.vocabulary import HEADLINE_GAPS

OVERALL = ("accuracy", "balanced_accuracy")


def cells(report: dict) -> dict[tuple[str, str, str], dict]:
    """(model, attribute or "overall", metric) -> the aggregate's {mean, ci, n_replicates}."""
    attributes = report["study"]["sensitive"]
    out = {}
    for model in report["models"]:
        aggregate = model["aggregate"]
        for metric in OVERALL:
            out[model["name"], "overall", metric] = aggregate["overall"][metric]
        for attribute in attributes:
            for gap in HEADLINE_GAPS:
                out[model["name"], attribute, gap] = aggregate["gaps"][attribute][gap]
    return out


def verdicts(report: dict) -> dict[tuple[str, str, str], str]:
    """(model, partition, gap) -> the verdict of its comparison with the supervised baseline."""
    out = {}
    for model in report["models"]:
        for partition, gaps in (model.get("compared_with_supervised") or {}).items():
            for gap, entry in gaps.items():
                if isinstance(entry, dict) and (verdict := comparison_verdict(entry)) is not None:
                    out[model["name"], partition, gap] = verdict
    return out


def inside(value: float, ci: list[float] | None) -> bool:
    return ci is not None and ci[0] <= value <= ci[1]


def main(first: Path, second: Path) -> int:
    reports = [json.loads(Path(p).read_text()) for p in (first, second)]
    a, b = (cells(report) for report in reports)
    precisions = [r.get("training", {}).get("precision", "?") for r in reports]
    shared = [key for key in a if key in b]
    replicates = min(min(a[k]["n_replicates"], b[k]["n_replicates"]) for k in shared)
    disagree, largest = [], (0.0, None)
    for key in shared:
        x, y = a[key], b[key]
        if abs(x["mean"] - y["mean"]) > largest[0]:
            largest = (abs(x["mean"] - y["mean"]), key)
        if not (inside(x["mean"], y["ci"]) and inside(y["mean"], x["ci"])):
            disagree.append(f"  {' / '.join(key)}: {precisions[0]} {x['mean']:.4f} {x['ci']}, "
                            f"{precisions[1]} {y['mean']:.4f} {y['ci']}")
    print(f"{precisions[0]} against {precisions[1]}: {len(shared)} cells ({len({k[0] for k in shared})} models), "
          f"{replicates} replicates; {len(shared) - len(disagree)} agree, {len(disagree)} do not; largest "
          f"difference of means {largest[0]:.4f} ({' / '.join(largest[1])})")
    for line in disagree:
        print(line)
    said = [verdicts(report) for report in reports]
    compared = [key for key in said[0] if key in said[1]]
    differ = [key for key in compared if said[0][key] != said[1][key]]
    findings = {"narrowed", "widened"}
    flipped = [key for key in differ if {said[0][key], said[1][key]} & findings]
    print(f"paired comparisons with the supervised baseline: {len(compared)}, "
          f"{len(compared) - len(differ)} with the same verdict; {len(flipped)} findings on one side only")
    for key in differ:
        print(f"  {' / '.join(key)}: {said[0][key]} / {said[1][key]}")
    return 1 if disagree or flipped or replicates < 2 else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
