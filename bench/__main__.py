"""Run the benchmarks, each in its own process, then rewrite the results table of docs/performance.md.

    python -m bench                          every benchmark (long: tens of minutes on 2 cores)
    python -m bench --only pretrain,umap     some of them
    python -m bench --quick                  small sizes, a smoke check: results go to
                                             .cache/bench/results-quick.json and the table is
                                             printed, docs/performance.md is left alone
    python -m bench --threads 1              torch (OpenMP) threads of every benchmark: on a
                                             machine shared with other work, 1 thread per
                                             process avoids waiting on descheduled threads

Each benchmark is `python -m bench.bench_NAME` and merges its own entry into
bench/results.json, so one that fails does not lose the others' figures (the exit code is 1
if any failed). The table in docs/performance.md between `<!-- bench:begin -->` and
`<!-- bench:end -->` is regenerated from bench/results.json; the rest of the page is
written by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from typing import Any

from bench.common import PYTHON, ROOT, machine, read_results, results_path

#: short name -> module and its arguments (the entries each writes are named in its docstring)
BENCHES: dict[str, str] = {
    "pretrain": "bench.bench_pretrain",
    "bootstrap": "bench.bench_bootstrap",
    "umap": "bench.bench_umap",
    "pages": "bench.bench_pages",
    "scale": "bench.bench_scale",
    "scale_audit": "bench.bench_scale --audit",
    "study": "bench.bench_study",
    "audit": "bench.bench_audit",
    "replicates": "bench.bench_replicates",
    "lime": "bench.bench_lime",
    "shap": "bench.bench_shap",
    "grid": "bench.bench_grid",
}
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _number(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if x != 0 and abs(x) < 0.01:
        return f"{x:.2g}"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _details(entry: dict[str, Any]) -> str:
    """The extra keys of an entry worth a line: scalars and flat dicts (no lists, no machine)."""
    skip = {"value", "unit", "peer", "peer_value", "ratio", "goal", "met", "machine", "quick"}
    parts = []
    for key, value in entry.items():
        if key in skip or isinstance(value, list):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {_number(v)}" for k, v in value.items())
        else:
            value = _number(value)
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


def _met(entry: dict[str, Any]) -> bool | None:
    """The entry's own verdict; for entries without one, a goal of the form '<= N unit'
    checked against the value; None when neither is there."""
    if "met" in entry:
        return bool(entry["met"])
    found = re.match(r"<=\s*([0-9.]+)", str(entry.get("goal", "")))
    return entry["value"] <= float(found.group(1)) if found else None


def table(results: dict[str, dict[str, Any]]) -> str:
    """The generated Markdown: the table, one line of details per entry, the machine."""
    m = machine()
    lines = ["| benchmark | ours | peer | ratio | goal | met? |", "|---|---|---|---|---|---|"]
    for name, e in results.items():
        unit = e.get("unit", "")
        met = {True: "yes", False: "**no**"}.get(_met(e), "no goal")
        lines.append(f"| {name} | {_number(e['value'])} {unit} | {_number(e['peer_value'])} {unit} | "
                     f"{_number(e['ratio'])} | {e['goal']} | {met} |")
    lines += ["", "ratio > 1 means ours is better than the peer (or inside the budget).", ""]
    for name, e in results.items():
        lines.append(f"- **{name}**: peer = {e['peer']}. {_details(e)}. Measured on: {e.get('machine', '?')}.")
    lines += ["", f"Machine of the last regeneration: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, "
                  f"torch {m['torch']}."]
    return "\n".join(lines)


def write_doc(results: dict[str, dict[str, Any]]) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n## Results\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{BEGIN}\n{table(results)}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated benchmarks to run, of: {', '.join(BENCHES)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke check (see above)")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every benchmark (default: torch's)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHES)}")

    env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
    failed = []
    for name in names:
        module = BENCHES[name]
        print(f"== {name}: python -m {module}{' --quick' if args.quick else ''}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([PYTHON, "-m", *module.split(), *(["--quick"] if args.quick else [])], cwd=ROOT,
                               env=env)
        print(f"== {name}: {'done' if code == 0 else f'FAILED (exit {code})'} in {time.perf_counter() - start:.0f} s",
              flush=True)
        if code != 0:
            failed.append(name)

    results = read_results(args.quick)
    if args.quick:
        print(table(results))
    else:
        write_doc(results)
        print(f"rewrote the results table in {DOC} from {results_path()}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
