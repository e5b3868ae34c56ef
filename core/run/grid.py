"""`run_grid`: a study grid's cells as Ray tasks, into DIR/cells/, listed in DIR/grid.json.

    cells (core.run.grid_config)  ->  one Ray task per cell (num_cpus=1, num_gpus=1 on CUDA), each an
    ordinary run_audit into a temporary folder renamed on success  ->  grid.json after every cell
    ->  the grid's verdicts (core.run.grid_verdicts, one Holm family over the whole grid)

Engine: local Ray by default (`ray.init(num_cpus=os.cpu_count())`, no dashboard), or an existing
cluster with `address` / RAY_ADDRESS (its nodes must see DIR at the same path, and have this
project importable: the tasks write their cells there). Ray is imported inside the functions that
run a grid: `equiscope --help` and the dashboard's first page must not pay for it.

Failure: an InputError fails its cell at once (bad input fails again); any other exception, or a
worker that died, is retried once, then the cell is failed with a one-line reason; other cells go
on. Cancel (`should_stop`, or Ctrl-C / SIGTERM in the driver) cancels the remaining tasks, marks
their cells cancelled and keeps the finished ones. Resume: finished cells (core.run.grid_manifest)
are not run again. Results equal the cells run one after another: every cell is the same seeded
run_audit (workers=1, one torch thread), whichever process or node runs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.run.config import AuditConfig
from core.run.grid_config import CELLS_FOLDER, GridCell, GridConfig
from core.run.grid_manifest import GridManifest, cell_dir, finished_before

Event = Callable[[dict], None]
#: runner(cell config, folder, on_event): what a cell runs; core.run.pipeline.run_audit by default.
CellRunner = Callable[[AuditConfig, Path, Event], Any]

ROOT = Path(__file__).resolve().parents[2]
ATTEMPTS = 2  # a cell that fails for any reason but bad input is run once more
POLL_S = 0.2


def audit_runner(config: AuditConfig, out_dir: Path, on_event: Event) -> None:
    from core.run.pipeline import run_audit  # here: torch and scikit-learn load in the Ray worker, not the driver

    run_audit(config, out_dir, on_event=on_event)


def run_cell(config: dict, final_dir: str, events, runner: CellRunner | None = None) -> dict:
    """The body of one cell's Ray task: the audit into a temporary folder beside `final_dir`,
    renamed to it on success (all or nothing, as `equiscope audit`). Returns {"status",
    "error", "retry"}: bad input is not retried; any other exception is (by the driver)."""
    final = Path(final_dir)
    partial = final.parent / f".{final.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    name = final.name

    def on_event(event: dict) -> None:
        if events is not None:
            events.put({**event, "cell": name})

    try:
        (runner or audit_runner)(AuditConfig.from_dict(config), partial, on_event)
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        return {"status": "succeeded", "error": None, "retry": False}
    except InputError as error:
        return {"status": "failed", "error": one_line(error), "retry": False}
    except Exception as error:  # a bug or a resource failure: retried once by the driver
        return {"status": "failed", "error": one_line(error), "retry": True}
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (f"{type(error).__name__}: {text[0]}" if text else type(error).__name__)[:300]


def worker_runtime_env() -> dict:
    """What every Ray worker needs to import this project (it is run from its checkout, not installed)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


def connect(address: str | None = None) -> bool:
    """Connect to Ray: the cluster at `address` (or RAY_ADDRESS), else a local one with this
    machine's cores. True when this call started the connection (the caller shuts it down);
    False when the process was already connected (a test's cluster, a notebook)."""
    import ray  # here: Ray's start-up is paid only by commands that run a grid

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, runtime_env=worker_runtime_env(), log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
            raise InputError(f"Cannot connect to the Ray cluster at {address} ({one_line(error)})",
                             "Check --address (host:port of the head node, or ray://host:10001) and that "
                             "`ray start --head` runs there") from None
    else:
        # "local": a new Ray of our own, never a cluster some earlier `ray start` left in /tmp/ray
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 runtime_env=worker_runtime_env())
    return True


def _check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """A host:port address that accepts no connection is bad input, said at once: ray.init
    itself would retry for a minute before failing ('auto' and 'local' are Ray's own words)."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"Ray address '{address}' is not host:port", "Give e.g. --address 10.0.0.5:6379")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise InputError(f"Cannot reach the Ray cluster at {address} ({error.strerror or type(error).__name__})",
                         "Check the address and that `ray start --head` runs there") from None


class _GridProgress:
    """Cell events as one grid event stream: the grid's fraction is (finished cells + the running
    cells' own fractions) / cells, and every message names its cell."""

    def __init__(self, on_event: Event | None, total: int, done: int) -> None:
        self.on_event, self.total, self.done = on_event, max(total, 1), done
        self.running: dict[str, float] = {}

    def _send(self, event: dict) -> None:
        if self.on_event is not None:
            fraction = (self.done + sum(self.running.values())) / self.total
            self.on_event({**event, "fraction": round(min(fraction, 1.0), 4)})

    def cell_event(self, event: dict) -> None:
        name = event.get("cell", "?")
        self.running[name] = float(event.get("fraction") or 0.0)
        stage = event.get("stage")
        kept = {k: v for k, v in event.items() if k not in ("fraction", "stage", "message")}
        message = f"{name}: {event.get('message') or stage or ''}".rstrip(": ")
        self._send({**kept, "stage": "audit" if stage == "done" else stage, "message": message})

    def cell_finished(self, name: str, status: str) -> None:
        self.running.pop(name, None)
        self.done += 1
        self._send({"stage": "grid", "cell": name, "cell_status": status,
                    "message": f"Cell {name} {status} ({self.done} of {self.total} done)"})


def run_grid(grid: GridConfig, out_dir: Path, *, on_event: Event | None = None,
             should_stop: Callable[[], bool] | None = None, address: str | None = None,
             runner: CellRunner | None = None) -> dict:
    """Run every unfinished cell of `grid` on Ray into `out_dir`; return grid.json's content."""
    grid.validate()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _check_reachable(address)  # before anything is written into out_dir
    out_dir = Path(out_dir)
    (out_dir / CELLS_FOLDER).mkdir(parents=True, exist_ok=True)
    manifest = GridManifest(out_dir, grid)
    todo: list[GridCell] = []
    for cell in grid.cells():
        if finished_before(out_dir, cell):
            manifest.set(cell.name, "succeeded")
            manifest.resumed.add(cell.name)
        else:
            todo.append(cell)
    manifest.write()
    progress = _GridProgress(on_event, len(manifest.cells), len(manifest.cells) - len(todo))
    if todo:
        _run_on_ray(todo, out_dir, manifest, progress, should_stop, address, runner)
    manifest.compute_verdicts()
    manifest.write()
    if on_event is not None:
        on_event({"stage": "done", "fraction": 1.0, "message": "Grid finished"})
    return manifest.to_dict()


def _run_on_ray(todo: list[GridCell], out_dir: Path, manifest: GridManifest, progress: _GridProgress,
                should_stop: Callable[[], bool] | None, address: str | None, runner: CellRunner | None) -> None:
    import ray  # here: see the module's docstring
    from ray.util.queue import Queue

    started_here = connect(address)
    pending: dict[Any, GridCell] = {}
    try:
        events = Queue()
        gpus = 1 if _wants_gpu(todo[0].config) else 0
        task = ray.remote(run_cell).options(num_cpus=1, num_gpus=gpus, max_retries=0, name="equiscope-grid-cell")

        def submit(cell: GridCell) -> None:
            manifest.attempts[cell.name] += 1
            manifest.set(cell.name, "running")
            pending[task.remote(cell.config.to_dict(), str(cell_dir(out_dir, cell)), events, runner)] = cell

        for cell in todo:
            submit(cell)
        manifest.write()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_S, fetch_local=True)
            _forward(events, progress)
            for ref in ready:
                cell = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as error:  # the worker died (out of memory, killed): retried like any failure
                    result = {"status": "failed", "error": one_line(error), "retry": True}
                if result["status"] == "failed" and result["retry"] and manifest.attempts[cell.name] < ATTEMPTS:
                    submit(cell)
                    continue
                manifest.set(cell.name, result["status"], result["error"])
                _forward(events, progress)
                progress.cell_finished(cell.name, result["status"])
                manifest.write()
            if pending and should_stop is not None and should_stop():  # after the finished ones are kept
                _cancel(pending, out_dir, manifest, progress)
        _forward(events, progress)
    except BaseException:  # Ctrl-C, SIGTERM, a lost cluster: the cells not finished are cancelled, the rest kept
        _cancel(pending, out_dir, manifest, progress)
        manifest.write()
        raise
    finally:
        if started_here:
            ray.shutdown()


def _wants_gpu(config: AuditConfig) -> bool:
    """A cell declares a GPU when its config asks for CUDA, or says "auto" and the cluster has GPUs."""
    import ray

    device = str(config.device)
    if device.startswith("cuda"):
        return True
    return device == "auto" and ray.cluster_resources().get("GPU", 0) > 0


def _forward(events, progress: _GridProgress) -> None:
    if events.qsize():
        for event in events.get_nowait_batch(events.qsize()):
            progress.cell_event(event)


def _cancel(pending: dict, out_dir: Path, manifest: GridManifest, progress: _GridProgress) -> None:
    """Cancel every pending task; their cells are cancelled, their partial folders removed."""
    import ray

    for ref, cell in list(pending.items()):
        ray.cancel(ref, force=True)
        manifest.set(cell.name, "cancelled", "Cancelled before it finished")
        for partial in (out_dir / CELLS_FOLDER).glob(f".{cell.name}.partial-*"):
            shutil.rmtree(partial, ignore_errors=True)
        progress.cell_finished(cell.name, "cancelled")
    pending.clear()
    manifest.write()


def grid_job(context) -> dict:
    """Job entry point (core.workspace.jobs, kind "grid"): the grid into the run's folder; the
    metrics are the cells' counts and the number of clear verdicts."""
    grid = GridConfig.from_dict(context.config["grid"])
    result = run_grid(grid, context.run_dir, on_event=context.report, should_stop=context.should_stop,
                      address=context.config.get("address"))
    verdicts = result["verdicts"] or {}
    return {**result["counts"], "clear_verdicts": sum(bool(r.get("clear")) and not r.get("below_floor")
                                                      for r in verdicts.get("rows", []))}
