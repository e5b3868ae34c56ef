"""Benchmark: one LIME explanation at 5,000 samples, ours against the plain way of using lime.

Ours: `core.explain.explain_row(..., repeats=1)`, the whole pipeline a reviewer waits for:
LIME over the original columns (categoricals as label codes), each perturbation sample
encoded with the fitted TabularEncoder's state and scored by the model, plus the row's own
probability.

Peer: lime as commonly wired to a model like ours, "the model wrapped as a plain numpy
predict function": `LimeTabularExplainer` on the encoded training matrix (one column per
one-hot fragment, lime's defaults: quartile discretisation, feature selection 'auto',
num_features=10) with `predict_fn = lambda X: column_stack([1 - p, p])`, p = the model's
`predict_proba(X)`.

Both explain the same test rows of the same model on an Adult audit run (default encoder);
each is warmed up once, then timed row by row; the median is reported. ratio = peer / ours
(> 1: ours is faster). Also timed: a 200-row subgroup aggregate (100 rows of each sex, the
aggregate's default LIME settings) against its 60 s budget (ratio = budget / measured).

    python -m bench.bench_lime [--run /tmp/adult-run] [--rows 10] [--quick]
    python bench/bench_lime.py

Writes "lime_explanation" and "lime_subgroup_aggregate" into bench/results.json (merged with
what is there). If the run folder does not exist it is made first (a few minutes):
equiscope audit --data adult --target income --sensitive sex,race --epochs 2
--finetune-epochs 2 --strategies linear --n-boot 50 --no-umap --out RUN
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: python bench/bench_lime.py
    sys.path.insert(0, str(ROOT))

from bench.common import machine_line, merge_result  # noqa: E402

GOAL_S = 0.3
SUBGROUP_BUDGET_S = 60.0


def make_run(out: Path) -> None:
    from core.run.pipeline import AuditConfig, run_audit

    print(f"making the Adult audit run in {out} (a few minutes)...", file=sys.stderr)
    partial = out.parent / f".{out.name}.partial"
    run_audit(AuditConfig(data="adult", target="income", sensitive=["sex", "race"], epochs=2, finetune_epochs=2,
                          strategies=["linear"], n_boot=50, umap=False), partial)
    partial.rename(out)


def time_ours(ctx, model: str, rows: list[int], num_samples: int) -> list[float]:
    from core.explain import explain_row

    explain_row(ctx, rows[0], model, num_samples=num_samples, repeats=1)  # warm-up: builds the explainer
    times = []
    for row in rows:
        start = time.perf_counter()
        explain_row(ctx, row, model, num_samples=num_samples, repeats=1)
        times.append(time.perf_counter() - start)
    return times


def time_peer(ctx, model_name: str, rows: list[int], num_samples: int) -> list[float]:
    import numpy as np
    from lime.lime_tabular import LimeTabularExplainer

    model = ctx.model(model_name)
    X = ctx.study.X

    def predict_fn(batch: np.ndarray) -> np.ndarray:
        p = model.predict_proba(batch.astype(np.float32))
        return np.column_stack([1.0 - p, p])

    explainer = LimeTabularExplainer(X[ctx.train_rows], mode="classification",
                                     feature_names=list(ctx.study.encoder.feature_names_), random_state=0)
    explainer.explain_instance(X[rows[0]], predict_fn, num_samples=num_samples)
    times = []
    for row in rows:
        start = time.perf_counter()
        explainer.explain_instance(X[row], predict_fn, num_samples=num_samples)
        times.append(time.perf_counter() - start)
    return times


def timed_rows(run: Path, count: int):
    """(RunContext, its default model, `count` evenly spaced test rows) of the Adult run at `run`, made
    first if missing: the rows both explanation benchmarks time (this one and bench_shap)."""
    from core.explain import load_run

    if not run.exists():
        make_run(run)
    ctx = load_run(run)
    return ctx, ctx.default_model, [int(r) for r in ctx.test_rows[:: max(1, len(ctx.test_rows) // count)][:count]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="/tmp/adult-run", help="an Adult audit run folder (made if missing)")
    parser.add_argument("--rows", type=int, default=10, help="test rows timed (default 10)")
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--skip-subgroup", action="store_true", help="time only the single explanation")
    parser.add_argument("--quick", action="store_true", help="3 rows, no subgroup aggregate (smoke check)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.skip_subgroup = 3, True

    from core.explain import subgroup_importance
    from core.explain.subgroup import NUM_SAMPLES as SUBGROUP_SAMPLES

    ctx, model, rows = timed_rows(Path(args.run), args.rows)

    ours = statistics.median(time_ours(ctx, model, rows, args.num_samples))
    peer = statistics.median(time_peer(ctx, model, rows, args.num_samples))
    machine = machine_line()
    print(f"one explanation at {args.num_samples} samples, model {model}, median of {len(rows)} rows ({machine})")
    print(f"  ours (raw columns -> encoder -> model): {ours:.3f} s")
    print(f"  peer (lime on the encoded matrix, numpy predict_fn): {peer:.3f} s")
    print(f"  ratio peer/ours: {peer / ours:.2f}  goal <= {GOAL_S} s: {'met' if ours <= GOAL_S else 'NOT met'}")
    entries = {"lime_explanation": {
        "value": round(ours, 4), "unit": "s",
        "peer": "lime on the encoded one-hot matrix, model wrapped as a plain numpy predict function",
        "peer_value": round(peer, 4), "ratio": round(peer / ours, 3), "goal": f"<= {GOAL_S} s", "met": ours <= GOAL_S,
        "model": model, "num_samples": args.num_samples, "rows": len(rows), "machine": machine}}

    if not args.skip_subgroup:
        done = [0]

        def progress(step: int, total: int) -> None:
            done[0] = step
            if step % 25 == 0 or step == total:
                print(f"  subgroup aggregate: {step}/{total} rows", file=sys.stderr)

        start = time.perf_counter()
        subgroup_importance(ctx, "sex", model, rows_per_group=100, on_progress=progress)
        elapsed = time.perf_counter() - start
        print(f"200-row subgroup aggregate (sex, {SUBGROUP_SAMPLES} samples per row): {elapsed:.1f} s "
              f"(budget {SUBGROUP_BUDGET_S:.0f} s)")
        entries["lime_subgroup_aggregate"] = {
            "value": round(elapsed, 2), "unit": "s", "peer": f"a budget of {SUBGROUP_BUDGET_S:.0f} s",
            "peer_value": SUBGROUP_BUDGET_S, "ratio": round(SUBGROUP_BUDGET_S / elapsed, 3),
            "goal": f"<= {SUBGROUP_BUDGET_S:.0f} s", "met": elapsed <= SUBGROUP_BUDGET_S, "rows": done[0],
            "num_samples": SUBGROUP_SAMPLES,
            "machine": machine}
    for name, entry in entries.items():
        path = merge_result(name, entry, quick=args.quick)
    print(f"wrote {', '.join(entries)} to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
