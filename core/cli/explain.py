"""`equiscope explain`: why one row got its decision, and whether it changes in another group.

Prints JSON: {"row_id", "model", "prediction", "probability", "weights": [{"feature", "value",
"weight", "condition", "std"}], "intercept", "local_fit_r2", "stability", "flip": [{"attribute",
"to", "probability", ...}]} plus "label", "split", "y_true", "groups", "num_samples", "seed",
"nearest_counterfactual" and "notes". Unknown row, model or run folder: exit 2, one line.
"""

from __future__ import annotations

import argparse

from core.cli.main import print_json
from core.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", dest="run_dir", metavar="DIR", required=True,
                        help="an audit run folder (the --out of 'equiscope audit')")
    parser.add_argument("--row", required=True, help="the row id (its position in the study's table; "
                                                     "test rows are listed in predictions.parquet)")
    parser.add_argument("--model", help="model name (default: the first self-supervised model in report.json)")
    parser.add_argument("--num-samples", type=int, default=5000, help="LIME perturbation samples (default 5000)")
    parser.add_argument("--seed", type=int, default=0, help="LIME seed; repeats use seed+1, seed+2, ... (default 0)")
    parser.add_argument("--repeats", type=int, default=5, help="LIME runs for the stability check (default 5)")
    parser.add_argument("--proxies", action="store_true",
                        help="also add flips that set the attribute's detected proxies to the target group's "
                             "typical values")


def run(args: argparse.Namespace) -> int:
    # Imported here: torch and LIME, which `equiscope --help` must not load.
    from core.explain import explain_row, flip_row, load_run, nearest_counterfactuals

    if args.num_samples < 10:
        raise InputError(f"--num-samples must be at least 10, got {args.num_samples}", "Use 5000 (LIME's default)")
    if args.repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {args.repeats}", "Use 5, or 1 to skip the stability check")
    ctx = load_run(args.run_dir)
    row = ctx.check_row(args.row)
    model = args.model or ctx.default_model
    ctx.model(model)
    explanation = explain_row(ctx, row, model, num_samples=args.num_samples, seed=args.seed, repeats=args.repeats)
    out = explanation.to_dict()
    y = ctx.study.data.y[row]
    out["y_true"] = None if y != y else int(y)
    out["groups"] = {a: str(ctx.study.data.groups[a].iloc[row]) for a in ctx.sensitive}
    out["flip"] = flip_row(ctx, row, model)
    if args.proxies:
        out["flip"] += flip_row(ctx, row, model, with_proxies=True)
    out["nearest_counterfactual"] = [entry for a in ctx.sensitive
                                     for entry in nearest_counterfactuals(ctx, row, a, model)[:1]]
    print_json(out)
    return 0
