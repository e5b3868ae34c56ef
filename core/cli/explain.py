"""`equiscope explain`: why one row got its decision, and whether it changes in another group.

Prints JSON: {"row_id", "model", "prediction", "probability", "weights": [{"feature", "value",
"weight", "condition", "std"}], "intercept", "local_fit_r2", "stability", "flip": [{"attribute",
"to", "probability", ...}]} plus "label", "split", "y_true", "groups", "num_samples", "seed",
"nearest_counterfactual" and "notes". Unknown row, model or run folder: exit 2, one line.

`--explainer shap` or `both` adds "shap": {"values": [{"feature", "value", "feature_value"}],
"base_value", ...} (core.explain.shap_tabular: base_value + sum of values = the model's
probability), and each flip gains "shap" (the flipped row's values). With `both`, "agreement"
(core.explain.agreement: Spearman correlation over the top features, the features on which they
disagree) and each flip's "weights" (LIME of the flipped row). `lime` (the default) prints what it
always printed.
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
    parser.add_argument("--explainer", default="lime", metavar="lime|shap|both",
                        help="which explanation of the row: LIME (default), SHAP, or both with their agreement")
    parser.add_argument("--proxies", action="store_true",
                        help="also add flips that set the attribute's detected proxies to the target group's "
                             "typical values")


def run(args: argparse.Namespace) -> int:
    # Imported here: torch and LIME, which `equiscope --help` must not load.
    from core.explain import explain_row, explain_row_shap, explanations_agreement, flip_row, load_run
    from core.explain import nearest_counterfactuals
    from core.explain.agreement import LIME, SHAP, explainers_of
    from core.explain.counterfactual import flipped_attributions

    if args.num_samples < 10:
        raise InputError(f"--num-samples must be at least 10, got {args.num_samples}", "Use 5000 (LIME's default)")
    if args.repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {args.repeats}", "Use 5, or 1 to skip the stability check")
    explainers = explainers_of(args.explainer)
    ctx = load_run(args.run_dir)
    row = ctx.check_row(args.row)
    model = args.model or ctx.default_model
    ctx.model(model)
    out = {}
    if LIME in explainers:
        out = explain_row(ctx, row, model, num_samples=args.num_samples, seed=args.seed, repeats=args.repeats).to_dict()
    if SHAP in explainers:
        shap = explain_row_shap(ctx, row, model, seed=args.seed).to_dict()
        for key in ("row_id", "model", "prediction", "probability", "label", "seed"):
            out.setdefault(key, shap[key])
        out.setdefault("split", ctx.split_of(row))
        out["notes"] = out.get("notes", []) + shap["notes"]
        out["shap"] = {key: shap[key] for key in ("values", "base_value", "max_evals", "background_rows", "algorithm")}
        if LIME in explainers:
            out["agreement"] = explanations_agreement(out["weights"], shap["values"])
    y = ctx.study.data.y[row]
    out["y_true"] = None if y != y else int(y)
    out["groups"] = {a: str(ctx.study.data.groups[a].iloc[row]) for a in ctx.sensitive}
    out["flip"] = flip_row(ctx, row, model)
    if args.proxies:
        out["flip"] += flip_row(ctx, row, model, with_proxies=True)
    if SHAP in explainers:  # the flipped row explained too (today's LIME-only output stays as it was)
        for flip in out["flip"]:
            flip.update(flipped_attributions(ctx, row, model, flip["attribute"], flip["to"], explainer=args.explainer,
                                             with_proxies=flip["with_proxies"], num_samples=args.num_samples,
                                             seed=args.seed))
    out["nearest_counterfactual"] = [entry for a in ctx.sensitive
                                     for entry in nearest_counterfactuals(ctx, row, a, model)[:1]]
    print_json(out)
    return 0
