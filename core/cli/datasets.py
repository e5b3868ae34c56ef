"""`equiscope datasets`: list the bundled example datasets."""

from __future__ import annotations

import argparse

from core.cli.main import print_json
from core.cli._format import text_table
from core.data.datasets import list_datasets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    cards = list_datasets()
    if args.json:
        print_json([{"name": c.name, "title": c.title, "rows": c.rows, "target": c.target,
                     "positive_label": c.positive_label, "sensitive": list(c.sensitive),
                     "licence": c.licence} for c in cards])
        return 0
    rows = [[c.name, f"{c.rows:,}", c.target, str(c.positive_label), ", ".join(c.sensitive), c.title]
            for c in cards]
    print(text_table(rows, ["name", "rows", "target", "positive", "sensitive", "title"], indent=""))
    print("\nUse a name wherever a command takes --data, e.g. 'equiscope inspect --data adult'.")
    return 0
