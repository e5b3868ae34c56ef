"""Shared helpers of the benchmarks: where results go, the machine they ran on, peak memory,
child processes measured on their own, and the encoded Adult matrix every benchmark uses.

Results: `merge_result(name, entry)` merges one entry into bench/results.json (a `--quick`
smoke run writes .cache/bench/results-quick.json instead, so that small sizes never replace
real figures). An entry is
    {"value", "unit", "peer", "peer_value", "ratio", "goal", ...extra keys}
with ratio > 1 meaning that we are better than the peer (or within the budget).
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from core.learning.ssl.views import FeatureLayout
    from core.data.study import Study

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
QUICK_RESULTS = ROOT / ".cache" / "bench" / "results-quick.json"
PYTHON = sys.executable
GB = 1e9


def results_path(quick: bool = False) -> Path:
    return QUICK_RESULTS if quick else RESULTS


def read_results(quick: bool = False) -> dict[str, dict[str, Any]]:
    path = results_path(quick)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def merge_result(name: str, entry: dict[str, Any], *, quick: bool = False) -> Path:
    """Merge {name: entry} into the results file (atomic replace, under a file lock so that
    two benchmarks finishing together do not drop each other's entry)."""
    path = results_path(quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    QUICK_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(QUICK_RESULTS.parent / f"{path.stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_results(quick)
        current[name] = {**entry, "quick": True} if quick else entry
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    return path


# --------------------------------------------------------------------------- the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.machine()


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / GB
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """CPU model, cores usable by this process, RAM, torch version (and its thread count when
    torch is already imported, importing it only to ask would cost seconds, or else when
    OMP_NUM_THREADS sets it), 1-min load."""
    ram = _ram_gb()
    info: dict[str, Any] = {"cpu": _cpu_model(), "cores": len(os.sched_getaffinity(0)),
                            "ram_gb": None if ram is None else round(ram, 1),
                            "torch": metadata.version("torch"), "load_1min": round(os.getloadavg()[0], 2)}
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    elif os.environ.get("OMP_NUM_THREADS", "").isdigit():
        info["torch_threads"] = int(os.environ["OMP_NUM_THREADS"])
    return info


def machine_line(info: dict[str, Any] | None = None) -> str:
    """One line for results and tables, e.g. 'AMD EPYC, 2 cores, 23.6 GB RAM, torch 2.13.0, load 1.9'."""
    m = info or machine()
    n = m.get("torch_threads")
    threads = "" if n is None else f" ({n} thread{'' if n == 1 else 's'})"
    return (f"{m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, torch {m['torch']}{threads}, "
            f"load {m['load_1min']:.1f}")


# ------------------------------------------------------------------------------- memory


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Measured:
    returncode: int
    wall_s: float
    peak_rss_bytes: int    # of this child alone (wait4), its own children not included
    stdout: str
    cpu_s: float = 0.0     # user + system CPU seconds of the child and the descendants it waited for
    busy: list[tuple[float, float]] | None = None  # (seconds since start, machine's busy share) each second


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
                 capture: bool = True) -> Measured:
    """Run a child process to its end: wall seconds, its own peak RSS (os.wait4's rusage of
    exactly this child, unlike RUSAGE_CHILDREN which is the maximum over every child ever
    waited for), and its stdout (stderr passes through, for progress)."""
    start = time.perf_counter()
    sampler = BusySampler()
    sampler.start()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE if capture else None, text=True)
    stdout = proc.stdout.read() if proc.stdout is not None else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: Popen must not wait again
    if proc.stdout is not None:
        proc.stdout.close()
    return Measured(proc.returncode, wall, usage.ru_maxrss * 1024, stdout, cpu_s=usage.ru_utime + usage.ru_stime,
                    busy=sampler.samples)


class BusySampler(threading.Thread):
    """The whole machine's busy share of its cores, once a second, from /proc/stat (Linux):
    1 - idle / total of the "cpu" line's tick deltas. Other work on the machine counts too."""

    def __init__(self, period_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.period_s, self.samples = period_s, []
        self._done = threading.Event()

    @staticmethod
    def _ticks() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, all

    def run(self) -> None:
        started = time.perf_counter()
        idle, total = self._ticks()
        while not self._done.wait(self.period_s):
            now_idle, now_total = self._ticks()
            if now_total > total:
                self.samples.append((round(time.perf_counter() - started, 1),
                                     round(1 - (now_idle - idle) / (now_total - total), 3)))
            idle, total = now_idle, now_total

    def stop(self) -> None:
        self._done.set()
        self.join()


def last_json_line(text: str) -> dict[str, Any]:
    """The last line of a child's stdout that is a JSON object (children print their figures so)."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON result in the child's output:\n{text[-2000:]}")


# ------------------------------------------------------------------------- Adult, encoded


@dataclass
class AdultMatrix:
    """The bundled Adult table as the pipeline encodes it: `study` (DatasetSpec from the
    dataset card, the seeded split, the encoder fitted on pretraining rows), `X` every row
    encoded (float32), `layout` the FeatureLayout that SCARF's corruption needs."""

    study: Study
    X: np.ndarray
    layout: FeatureLayout


def adult_matrix(seed: int = 0) -> AdultMatrix:
    """Study.create on the bundled Adult data with its card's target, positive label and
    sensitive attributes (sex, race), as `equiscope audit --data adult` does."""
    from core.data import DatasetSpec, open_source
    from core.data.datasets import load_card
    from core.learning.ssl.views import FeatureLayout
    from core.data.study import Study

    card = load_card("adult")
    spec = DatasetSpec(target=card.target, sensitive=tuple(card.sensitive), positive_label=str(card.positive_label))
    study = Study.create(open_source("adult"), spec, seed=seed)
    return AdultMatrix(study=study, X=study.X, layout=FeatureLayout.from_encoder(study.encoder))


def german_layout() -> "FeatureLayout":
    """The feature layout of German credit as `equiscope audit --data german --target credit` encodes it
    (bench_audit --quick's floor)."""
    from core.data import DatasetSpec, open_source
    from core.data.study import Study
    from core.learning.ssl.views import FeatureLayout

    study = Study.create(open_source("german"), DatasetSpec(target="credit", sensitive=("sex", "age")), seed=0)
    return FeatureLayout.from_encoder(study.encoder)
