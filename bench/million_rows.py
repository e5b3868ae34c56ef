"""The `million_rows` field of the "scale_audit" entry (issue 22): the default audit of a seeded
1,000,000-row, 50-column synthetic table with a planted group effect, its wall time and its
peak memory, and whether the audit finds the planted gap.

The table (written by `write_planted_table`, one row group at a time, so the writer never holds
it): `group` is "A" or "B" with probability 1/2 each; x0..x47 are standard normal (float32);
the outcome is
    y = 1[s > tau_group],   s = (x0 + ... + x7) / sqrt(8) ~ N(0, 1)
with tau_A = 0 and tau_B = Phi^-1(1 - 0.4), so P(y = 1 | A) = 0.5 and P(y = 1 | B) = 0.4 exactly:
the planted demographic-parity gap of the outcome is 0.10. The outcome is a deterministic
function of columns every model sees (group among them), so a model that learns it decides
like the outcome, and its selection-rate gap estimates the planted 0.10. x8..x47 are noise.

Found: the interval of the demographic-parity gap (the audit's own, replicate-aware, on its
test rows) of the model with the highest test ROC AUC covers 0.10 and excludes 0. Every
model's gap and interval are recorded beside it.

Memory: the audit's whole process tree (the audit and its worker processes), sampled every
0.5 s from /proc, not only the largest process: the peak of the summed proportional set size
(PSS: a page shared by k processes, such as torch's libraries, counts 1/k in each), which is
the memory the tree occupies, and the peak of the summed RSS (which counts shared pages once per
process) beside it; and the largest single process (os.wait4).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm

from bench.common import GB, PYTHON, run_measured

ROOT = Path(__file__).resolve().parents[1]
MILLION = 1_000_000
NUMERIC = 48  # + group + outcome = 50 columns
SIGNAL = 8
RATE_A, RATE_B = 0.5, 0.4
PLANTED_GAP = RATE_A - RATE_B
ROW_GROUP = 65_536
WALL_GOAL_S, MEMORY_GOAL_GB = 30 * 60, 4.0


def write_planted_table(path: Path, rows: int, seed: int = 0) -> None:
    """The table of the module docstring, as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    tau = {"A": norm.ppf(1 - RATE_A), "B": norm.ppf(1 - RATE_B)}
    schema = pa.schema([("group", pa.string()), ("outcome", pa.int8())]
                       + [(f"x{j}", pa.float32()) for j in range(NUMERIC)])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            m = min(ROW_GROUP, rows - start)
            group = np.where(rng.random(m) < 0.5, "A", "B")
            x = rng.normal(size=(m, NUMERIC)).astype(np.float32)
            s = x[:, :SIGNAL].astype(np.float64).sum(axis=1) / np.sqrt(SIGNAL)
            y = (s > np.where(group == "A", tau["A"], tau["B"])).astype(np.int8)
            columns = [pa.array(group), pa.array(y)] + [pa.array(x[:, j]) for j in range(NUMERIC)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=ROW_GROUP)


class TreeMemory(threading.Thread):
    """Peaks of the summed PSS and RSS of this process's descendants, sampled from /proc."""

    def __init__(self, period_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.period_s, self._done = period_s, threading.Event()
        self.peak_pss_bytes = self.peak_rss_bytes = 0
        self.root = os.getpid()

    @staticmethod
    def _children() -> dict[int, list[int]]:
        tree: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                tree.setdefault(parent, []).append(int(entry.name))
        return tree

    @staticmethod
    def _pss_rss(pid: int) -> tuple[int, int]:
        """(Pss, Rss) of one process in bytes, from /proc/PID/smaps_rollup (0, 0 once it is gone)."""
        sizes = {"Pss:": 0, "Rss:": 0}
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                field = line.split()
                if field and field[0] in sizes:
                    sizes[field[0]] = int(field[1]) * 1024
        except OSError:
            pass
        return sizes["Pss:"], sizes["Rss:"]

    def run(self) -> None:
        while not self._done.is_set():
            tree = self._children()
            pss = rss = 0
            stack = list(tree.get(self.root, []))
            while stack:  # every descendant of this process (the audit and its workers)
                pid = stack.pop()
                one_pss, one_rss = self._pss_rss(pid)
                pss, rss = pss + one_pss, rss + one_rss
                stack.extend(tree.get(pid, []))
            self.peak_pss_bytes = max(self.peak_pss_bytes, pss)
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            self._done.wait(self.period_s)

    def stop(self) -> None:
        self._done.set()
        self.join()


def million_rows(rows: int = MILLION, seed: int = 0) -> dict:
    """Audit the planted table with the defaults and one replicate; the entry's field."""
    with tempfile.TemporaryDirectory(prefix="bench-million-") as tmp:
        data, out = Path(tmp) / "planted.parquet", Path(tmp) / "run"
        started = time.perf_counter()
        write_planted_table(data, rows, seed)
        print(f"wrote {rows:,} x {NUMERIC + 2} ({data.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - started:.0f} s; auditing...", file=sys.stderr, flush=True)
        memory = TreeMemory()
        memory.start()
        measured = run_measured([PYTHON, "-m", "core.cli.main", "audit", "--data", str(data), "--target", "outcome",
                                 "--positive", "1", "--sensitive", "group", "--replicates", "1", "--out", str(out)],
                                cwd=ROOT, capture=False)
        memory.stop()
        if measured.returncode != 0:
            return {"rows": rows, "failed": f"exit {measured.returncode}", "wall_s": round(measured.wall_s, 1)}
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        timings = json.loads((out / "timings.json").read_text(encoding="utf-8"))
    gaps = {m["name"]: {"auc": m["overall"].get("roc_auc"),
                        "gap": m["aggregate"]["gaps"]["group"]["demographic_parity_difference"]["mean"],
                        "ci": m["aggregate"]["gaps"]["group"]["demographic_parity_difference"]["ci"]}
            for m in report["models"]}
    best = max(gaps, key=lambda name: gaps[name]["auc"] or 0.0)
    low, high = gaps[best]["ci"]
    peak_gb = max(memory.peak_pss_bytes, measured.peak_rss_bytes) / GB  # the tree, at least its largest process
    return {"rows": rows, "columns": NUMERIC + 2, "wall_s": round(measured.wall_s, 1),
            "peak_rss_gb": round(peak_gb, 3), "peak_tree_pss_gb": round(memory.peak_pss_bytes / GB, 3),
            "peak_tree_rss_gb": round(memory.peak_rss_bytes / GB, 3),
            "largest_process_gb": round(measured.peak_rss_bytes / GB, 3),
            "planted_gap": PLANTED_GAP, "best_model": best, "best_gap": round(gaps[best]["gap"], 4),
            "best_ci": [round(low, 4), round(high, 4)], "planted_gap_found": bool(low <= PLANTED_GAP <= high and low > 0),
            "models": {name: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in g.items()}
                       for name, g in gaps.items()},
            "stages_s": {k: round(float(v), 1) for k, v in timings.items() if k.endswith("_s")},
            "met": measured.wall_s <= WALL_GOAL_S and peak_gb <= MEMORY_GOAL_GB,
            "goal": f"<= {WALL_GOAL_S // 60} min and <= {MEMORY_GOAL_GB:g} GB on 2 cores, planted gap found"}
