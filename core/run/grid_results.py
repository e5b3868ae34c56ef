"""A finished grid as the Compare page reads it: the frontier over every cell, label-fraction
curves with intervals, and the per-method verdicts, from grid.json and the cells' reports.

The supervised baseline does not depend on the SSL method: with the study seed, every cell of a
label fraction trains the same one, so it is shown once per label fraction (the first cell's).
Each point is one cell's audit (core.results.compare), never an average of cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from core.results.compare import comparison_table, label_fraction_curves, pareto_front
from core.run.grid_manifest import cell_reports, read_grid
from core.vocabulary import HIGHER_IS_BETTER, SUPERVISED

GRID_RUN = "grid"  # every cell's rows carry one run id: one colour per recipe across the cells


def open_grid(out_dir: Path) -> tuple[dict, list[tuple[dict, dict]]]:
    """(grid.json, (cell record, report) of every succeeded cell); InputError when unreadable."""
    grid = read_grid(out_dir)
    return grid, cell_reports(out_dir, grid)


def grid_frontier(cells: list[tuple[Mapping, dict]], attribute: str, gap: str) -> pd.DataFrame:
    """core.results.compare.comparison_table over every cell (one row per model and label fraction,
    the supervised baseline once per fraction), with the Pareto flags of the whole grid."""
    records = [({"id": GRID_RUN, "name": record["name"]}, report) for record, report in cells]
    table = comparison_table(records, attribute, gap)
    if table.empty:
        return table
    table = table.drop_duplicates(subset=["model", "label_fraction"], keep="first").reset_index(drop=True)
    table["pareto_worst_group"] = pareto_front(table["accuracy"], table["worst_group_accuracy"])
    table["pareto_gap"] = pareto_front(table["accuracy"], table["gap"], maximize_y=gap in HIGHER_IS_BETTER)
    return table


def grid_curves(cells: list[tuple[Mapping, dict]], partition: str, metric: str) -> pd.DataFrame:
    """core.results.compare.label_fraction_curves per method (each method's cells are one curve per
    model), the supervised baseline's curve once."""
    methods = list(dict.fromkeys(record["method"] for record, _ in cells))
    frames = [label_fraction_curves([(r, rep) for r, rep in cells if r["method"] == method], partition, metric)
              for method in methods]
    if not frames:
        return label_fraction_curves([], partition, metric)
    curves = pd.concat(frames, ignore_index=True)
    baseline = curves["model"] == SUPERVISED
    once = curves[baseline].drop_duplicates(subset=["label_fraction", "group"], keep="first")
    return pd.concat([curves[~baseline], once], ignore_index=True)


def verdict_table(grid: dict, attribute: str | None = None) -> pd.DataFrame:
    """The grid's verdicts (grid.json "verdicts" rows), one row per method, strategy, label
    fraction, attribute and headline gap; only `attribute`'s when given."""
    rows = (grid.get("verdicts") or {}).get("rows") or []
    table = pd.DataFrame(rows, columns=["method", "strategy", "label_fraction", "cell", "model", "attribute", "gap",
                                        "difference", "ci", "p_value", "p_adjusted", "clear", "below_floor",
                                        "verdict"])
    return table if attribute is None else table[table["attribute"] == attribute].reset_index(drop=True)
