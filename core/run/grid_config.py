"""GridConfig: a study grid, every SSL method x label fraction as one ordinary audit (a cell).

A cell is `core.run.pipeline.run_audit` of the grid's base AuditConfig with its own `method`
and `label_fraction`; each cell trains every chosen strategy beside the supervised baseline
(one pretraining per cell and replicate, not one per strategy). Every cell keeps the study
seed, so every cell has the same split and the same test rows. Within a cell `workers=1`:
the grid's engine (Ray, core.run.grid) owns the cores, one cell per core.

Light on purpose (no numpy, no torch, no ray at import): `equiscope grid --help` and the
Compare page's "Run a grid" form read it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from core.errors import InputError
from core.run.config import AuditConfig

#: Every SSL method of core.learning.ssl, in its registry order (a test checks they agree), so
#: that validating "--methods all" does not import torch.
ALL_METHODS: tuple[str, ...] = ("scarf", "vime", "dae", "simclr", "byol", "simsiam", "vicreg", "barlow", "swav",
                                "moco", "vae", "deepcluster")
CELLS_FOLDER = "cells"
GRID_FILE = "grid.json"


@dataclass(frozen=True)
class GridCell:
    """One (method, label_fraction) audit of the grid, and the folder its run goes to."""

    method: str
    label_fraction: float
    config: AuditConfig = field(compare=False)

    @property
    def name(self) -> str:
        """'scarf-lf0.1', 'vime-lf1': the cell's folder under DIR/cells/."""
        return f"{self.method}-lf{self.label_fraction:g}"

    @property
    def config_hash(self) -> str:
        return config_hash(self.config.to_dict())


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the cell's AuditConfig as canonical JSON (sorted keys): a finished cell whose
    report.json carries a config of the same hash is not run again (resume)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode("utf-8")).hexdigest()


@dataclass
class GridConfig:
    """The grid's knobs: `base` holds every AuditConfig knob shared by the cells (strategies,
    replicates, epochs, seed, ...); `methods` x `label_fractions` makes the cells."""

    base: AuditConfig
    methods: list[str]
    label_fractions: list[float]

    def validate(self) -> None:
        if not self.methods:
            raise InputError("No SSL method chosen", f"Give --methods, e.g. scarf,vime, or all ({', '.join(ALL_METHODS)})")
        unknown = [m for m in self.methods if m not in ALL_METHODS]
        if unknown:
            raise InputError(f"Unknown SSL method '{unknown[0]}'", f"Choose from: {', '.join(ALL_METHODS)}, or all")
        if not self.label_fractions:
            raise InputError("No label fraction chosen", "Give --label-fractions, e.g. 0.1,0.5,1")
        for fraction in self.label_fractions:
            if not isinstance(fraction, (int, float)) or math.isnan(fraction) or not 0 < fraction <= 1:
                raise InputError(f"Label fraction {fraction} is outside (0, 1]",
                                 "Give fractions such as 0.1,0.5,1 (10%, 50% and all of the labels)")
        for values, what in ((self.methods, "method"), (self.label_fractions, "label fraction")):
            if len(set(values)) != len(values):
                raise InputError(f"A {what} is given twice", "Name each one once")
        for cell in self.cells():
            cell.config.validate()

    def cells(self) -> list[GridCell]:
        """Every (method, label fraction), methods first; each cell's AuditConfig has workers=1."""
        return [GridCell(method, float(fraction),
                         replace(self.base, method=method, label_fraction=float(fraction), workers=1))
                for method in self.methods for fraction in self.label_fractions]

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.to_dict(), "methods": list(self.methods),
                "label_fractions": [float(f) for f in self.label_fractions]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GridConfig:
        return cls(base=AuditConfig.from_dict(data["base"]), methods=list(data["methods"]),
                   label_fractions=[float(f) for f in data["label_fractions"]])


def parse_methods(text: str) -> list[str]:
    """'scarf,vime' -> ['scarf', 'vime']; 'all' -> every method (ALL_METHODS)."""
    names = [name.strip().lower() for name in (text or "").split(",") if name.strip()]
    return list(ALL_METHODS) if names == ["all"] else names


def parse_fractions(text: str) -> list[float]:
    """'0.1,0.5,1' -> [0.1, 0.5, 1.0]; anything that is not a number is bad input."""
    fractions = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        try:
            fractions.append(float(part))
        except ValueError:
            raise InputError(f"Label fraction '{part}' is not a number",
                             "Give fractions such as 0.1,0.5,1") from None
    return fractions


# ------------------------------------------------------------------------------ expected cost

#: The per-cell time model: a cell costs a fixed part (the worker's imports, the study, the audit's
#: intervals and probes) plus, per replicate, one pretraining and the fine-tunings, each in proportion
#: to its epochs and to the table's rows. Fitted to bench/bench_grid.py on this project's shared 2-core
#: server (German credit, 1,000 rows, the default encoder, 3 replicates x (2 pretraining + 2 x 2
#: fine-tuning epochs), 1,000 resamples): 9 cells one after another took 186 s, about 20 s a cell,
#: at a load of 15. Cells run one per core when the cores are free; on a machine other work keeps
#: busy, Ray's cells gained nothing there (277 s), so the estimate is a floor, not a promise.
CELL_FIXED_S = 8.0
PRETRAIN_S_PER_EPOCH_PER_1K_ROWS = 1.0
FINETUNE_S_PER_EPOCH_PER_1K_ROWS = 0.33


@dataclass(frozen=True)
class GridCost:
    """What a grid will do before it starts: its cells, its trainings, a rough wall time."""

    cells: int
    trainings: int
    cell_seconds: float
    seconds: float
    parallel: int


def expected_cost(grid: GridConfig, rows: int, parallel: int) -> GridCost:
    """cells = methods x label fractions; trainings = cells x replicates x (1 pretraining +
    strategies + 1 supervised baseline + classical baselines); seconds per cell =

        CELL_FIXED_S + replicates x rows/1000 x (epochs x PRETRAIN_S + (strategies + 1) x finetune_epochs x FINETUNE_S)

    (fine-tuning stops early, so this is an upper guide), and the grid's wall time is the cells
    in waves of `parallel` (one cell per core): ceil(cells / parallel) x seconds per cell."""
    base = grid.base
    cells = len(grid.methods) * len(grid.label_fractions)
    per_replicate = 1 + len(base.strategies) + 1 + len(base.baselines)
    trainings = cells * int(base.replicates) * per_replicate
    thousands = max(int(rows), 1) / 1000
    cell_s = CELL_FIXED_S + int(base.replicates) * thousands * (
        int(base.epochs) * PRETRAIN_S_PER_EPOCH_PER_1K_ROWS
        + (len(base.strategies) + 1) * int(base.finetune_epochs) * FINETUNE_S_PER_EPOCH_PER_1K_ROWS)
    parallel = max(int(parallel), 1)
    return GridCost(cells=cells, trainings=trainings, cell_seconds=cell_s,
                    seconds=math.ceil(cells / parallel) * cell_s, parallel=parallel)
