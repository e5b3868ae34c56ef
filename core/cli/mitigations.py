"""`equiscope mitigations`: every mitigation an audit can add (core.mitigation.catalog), with its
kind, one plain line and its expected cost. Reads the light catalog only (no fairlearn, no torch)."""

from __future__ import annotations

import argparse

from core.cli._format import text_table
from core.cli.main import print_json
from core.mitigation.catalog import CATALOG


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    if args.json:
        print_json([{"name": m.name, "kind": m.kind, "summary": m.summary, "cost": m.cost} for m in CATALOG])
        return 0
    print(text_table([[m.name, m.kind, m.cost, m.summary] for m in CATALOG], ["name", "kind", "cost", "what it does"],
                     indent=""))
    print("\nAdd them to an audit with 'equiscope audit ... --mitigations NAME[,NAME...]' (or all); "
          "'--mitigation-sweep' fits each fairlearn reduction at several constraint bounds.")
    return 0
