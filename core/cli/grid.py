"""`equiscope grid`: every SSL method x strategy x label fraction, each cell an ordinary audit, on Ray.

DIR/grid.json lists the cells and the grid's verdicts; DIR/cells/<method>-lf<fraction>/ holds each
cell's run folder (written all or nothing). Run it again into the same DIR to finish a grid that
was killed or cancelled: finished cells are kept (docs/grid.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from core.cli import audit
from core.cli._format import text_table
from core.cli._progress import ProgressBar
from core.errors import InputError
from core.mitigation.catalog import parse_mitigations
from core.run.config import AuditConfig  # light: the defaults without torch
from core.run.grid_config import ALL_METHODS, GridConfig, parse_fractions, parse_methods

#: The `equiscope audit` options a grid shares, taken from audit.add_arguments rather than copied.
SHARED_OPTIONS = ("data", "target", "sensitive", "positive", "baselines", "epochs", "finetune_epochs",
                  "finetune_patience", "pretrain_patience", "n_boot", "replicates", "seed", "threads", "device",
                  "precision", "no_umap", "include_pii", "unaware", "outcome_effect", "mitigations")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    template = argparse.ArgumentParser(add_help=False)
    audit.add_arguments(template)
    for action in template._actions:  # argparse has no public way to share an action between parsers
        if action.dest in SHARED_OPTIONS:
            parser._add_action(action)
    parser.add_argument("--methods", required=True,
                        help=f"comma-separated SSL methods, or all ({', '.join(ALL_METHODS)})")
    parser.add_argument("--strategies", default="linear",
                        help="comma-separated fine-tuning strategies trained in every cell beside the supervised "
                             "baseline (default %(default)s)")
    parser.add_argument("--label-fractions", default="1",
                        help="comma-separated shares of the training labels, each in (0, 1], e.g. 0.1,0.5,1 "
                             "(default %(default)s)")
    parser.add_argument("--address", default=None,
                        help="an existing Ray cluster (host:port of its head, or ray://host:10001); default: "
                             "RAY_ADDRESS if set, else a local Ray on this machine's cores")
    parser.add_argument("--out", required=True,
                        help="folder for grid.json and cells/; run again into it to finish an interrupted grid")


def grid_config(args: argparse.Namespace) -> GridConfig:
    """The grid the flags describe (validated: unknown method, fraction outside (0, 1] -> InputError)."""
    if not args.data:
        raise InputError("Give the table to audit (--data)", "Run 'equiscope grid --help' for the options")
    base = AuditConfig(data=args.data, target=args.target, positive=args.positive,
                       sensitive=audit._names(args.sensitive), strategies=audit._names(args.strategies),
                       baselines=[] if args.baselines.strip().lower() == "none" else audit._names(args.baselines),
                       epochs=args.epochs, finetune_epochs=args.finetune_epochs,
                       finetune_patience=args.finetune_patience, pretrain_patience=args.pretrain_patience,
                       n_boot=args.n_boot, seed=args.seed, replicates=args.replicates, umap=not args.no_umap,
                       include_pii=args.include_pii, unaware=args.unaware, threads=args.threads, device=args.device,
                       precision=args.precision, outcome_effect=args.outcome_effect,
                       mitigations=parse_mitigations(args.mitigations))
    if args.n_boot < 0:
        raise InputError(f"--n-boot must be 0 or more, got {args.n_boot}", "Use 1000 for reporting, 0 to skip CIs")
    grid = GridConfig(base=base, methods=parse_methods(args.methods),
                      label_fractions=parse_fractions(args.label_fractions))
    grid.validate()
    return grid


def run(args: argparse.Namespace) -> int:
    grid = grid_config(args)
    out = Path(args.out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out '{out}' is a file", "Give a folder path")
    from core.data.source import open_source  # here: pandas (not for --help)
    from core.run.grid import run_grid  # here: Ray, torch (not for --help)

    open_source(grid.base.data)  # a missing table is bad input now, not in every cell
    signal.signal(signal.SIGTERM, audit._interrupt)  # `kill` cancels the remaining cells like Ctrl-C
    bar = ProgressBar()
    try:
        result = run_grid(grid, out, on_event=bar.update, address=args.address)
    finally:
        bar.close()
    _print_summary(result, out)
    failed = result["counts"]["failed"]
    if failed:
        print(f"{failed} of {result['n_cells']} cells failed (reasons in {out / 'grid.json'}); run the same "
              "command again to retry them: finished cells are kept", file=sys.stderr)
    return 1 if failed else 0


def _print_summary(result: dict, out: Path) -> None:
    from core.results.formatting import fmt_ci, fmt_num  # here: numpy (not for --help)

    verdicts = result.get("verdicts") or {}
    rows = [[r["method"], r["strategy"], f"{r['label_fraction']:g}", r["attribute"], r["gap"],
             fmt_num(r["difference"]), fmt_ci(r["ci"]), fmt_num(r["p_adjusted"]), r["verdict"] or "n/a"]
            for r in verdicts.get("rows", [])]
    if rows:
        print(text_table(rows, ["method", "strategy", "labels", "attribute", "gap", "vs supervised", "95% CI",
                                "p (Holm, grid)", "verdict"], indent=""))
    counts = result["counts"]
    print(f"\n{counts['succeeded']} of {result['n_cells']} cells finished"
          + "".join(f", {counts[s]} {s}" for s in ("failed", "cancelled") if counts[s])
          + f"; verdicts Holm-adjusted over the whole grid ({verdicts.get('size', 0)} comparisons). "
            f"Wrote {out / 'grid.json'}", file=sys.stderr)
