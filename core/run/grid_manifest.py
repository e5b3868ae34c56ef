"""grid.json: the grid's cells, where each one's report is, its status, and the grid's verdicts.

One row per (method, strategy, label fraction), as the issue asks; the rows of one cell share
its folder (DIR/cells/<method>-lf<fraction>/), report, status and config hash, since one audit
trains every strategy of the cell. Statuses: pending, running, succeeded, failed (with a
one-line `error`), cancelled. grid.json is rewritten atomically (core.files.atomic_write)
after every cell that finishes, so a reader (the dashboard) never sees half of it, and a killed
grid leaves the cells it finished listed.

Resume: a cell whose folder holds a report.json whose `config` hashes to the cell's config hash
(core.run.grid_config.config_hash) is finished and is not run again, whatever grid.json says
(the report is the evidence; grid.json may be older than the last renamed folder).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core import __version__
from core.errors import InputError
from core.files import atomic_write
from core.results import folder
from core.run.grid_config import CELLS_FOLDER, GRID_FILE, GridCell, GridConfig, config_hash
from core.run.grid_verdicts import grid_verdicts

STATUSES = ("pending", "running", "succeeded", "failed", "cancelled")


def cell_dir(out_dir: Path, cell: GridCell) -> Path:
    return Path(out_dir) / CELLS_FOLDER / cell.name


def finished_before(out_dir: Path, cell: GridCell) -> bool:
    """The cell's folder holds a report made from this very cell config (resume)."""
    path = cell_dir(out_dir, cell) / folder.REPORT
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and config_hash(report.get("config") or {}) == cell.config_hash


class GridManifest:
    """The rows of grid.json, kept in memory by the driver and written after every change that matters."""

    def __init__(self, out_dir: Path, grid: GridConfig) -> None:
        self.out_dir, self.grid = Path(out_dir), grid
        self.cells = {cell.name: cell for cell in grid.cells()}
        self.status = dict.fromkeys(self.cells, "pending")
        self.errors: dict[str, str | None] = dict.fromkeys(self.cells)
        self.attempts = dict.fromkeys(self.cells, 0)
        self.resumed: set[str] = set()
        self.verdicts: dict[str, Any] | None = None

    def set(self, name: str, status: str, error: str | None = None) -> None:
        assert status in STATUSES, status
        self.status[name], self.errors[name] = status, error

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for name, cell in self.cells.items():
            report = f"{CELLS_FOLDER}/{name}/{folder.REPORT}" if self.status[name] == "succeeded" else None
            for strategy in cell.config.strategies:
                rows.append({"method": cell.method, "strategy": strategy, "label_fraction": cell.label_fraction,
                             "cell": name, "report": report, "status": self.status[name],
                             "error": self.errors[name], "attempts": self.attempts[name],
                             "resumed": name in self.resumed, "config_hash": cell.config_hash})
        return rows

    def compute_verdicts(self) -> dict[str, Any]:
        """The grid-level verdicts over every succeeded cell (core.run.grid_verdicts)."""
        reports = {name: read_report(self.out_dir, name) for name, status in self.status.items()
                   if status == "succeeded"}
        self.verdicts = grid_verdicts((row, reports[row["cell"]]) for row in self.rows() if row["cell"] in reports)
        return self.verdicts

    def to_dict(self) -> dict[str, Any]:
        counts = {status: sum(s == status for s in self.status.values()) for status in STATUSES}
        return {"equiscope_version": __version__, "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "config": self.grid.to_dict(), "n_cells": len(self.cells), "counts": counts,
                "cells": self.rows(), "verdicts": self.verdicts}

    def write(self) -> None:
        atomic_write(self.out_dir / GRID_FILE, json.dumps(self.to_dict(), indent=2, default=str))


def read_grid(out_dir: Path) -> dict[str, Any]:
    """DIR/grid.json as written by GridManifest; InputError when it is missing or unreadable."""
    path = Path(out_dir) / GRID_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"No readable {GRID_FILE} in {out_dir} ({type(error).__name__})",
                         "Run the grid again into this folder") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise InputError(f"{path} is not a grid file", "Run the grid again into this folder")
    return data


def read_report(out_dir: Path, cell_name: str) -> dict:
    path = Path(out_dir) / CELLS_FOLDER / cell_name / folder.REPORT
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"The report of grid cell {cell_name} cannot be read ({type(error).__name__})",
                         "Run the grid again into the same folder: finished cells are kept") from None


def cell_reports(out_dir: Path, grid: dict[str, Any]) -> list[tuple[dict, dict]]:
    """(a run-like record {"id", "name", "method", "label_fraction"}, report) of every succeeded
    cell, in grid order: what core.results.compare's tables and curves read."""
    seen: dict[str, tuple[dict, dict]] = {}
    for row in grid["cells"]:
        if row.get("status") == "succeeded" and row["cell"] not in seen:
            record = {"id": row["cell"], "name": row["cell"], "method": row["method"],
                      "label_fraction": row["label_fraction"]}
            seen[row["cell"]] = (record, read_report(out_dir, row["cell"]))
    return list(seen.values())


def cell_names(rows: Iterable[dict], status: str) -> list[str]:
    return list(dict.fromkeys(row["cell"] for row in rows if row.get("status") == status))
