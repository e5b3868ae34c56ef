"""Run long work (pretraining, audits) outside the dashboard, one job at a time, safely.

How it works:
- `submit(workspace, kind, name, config, actor=...)` records a `queued` run in the store,
  owned by `actor` (core.workspace.auth), and makes sure a worker process is running
  (`ensure_worker`).
- The worker (`python -m core.workspace.jobs --workspace W`) holds an exclusive lock file, so there is
  at most one per workspace; it claims the oldest queued run, runs it, and repeats; it exits
  after `IDLE_EXIT_S` seconds without work (the next submit starts a new one).
- A job is a function `job(context: JobContext) -> dict` found by its kind in `JOB_KINDS`.
  It reports progress with `context.report(event)` and checks `context.should_stop()`
  between steps (cooperative cancel). Its return value becomes the run's metrics.
- A background thread writes a heartbeat every `HEARTBEAT_S` seconds. If the worker dies
  (killed, out of memory), the run stays `running` until `Workspace.recover_interrupted`
  sees the dead process or the stale heartbeat and marks it `interrupted`.
- A job that raises is marked `failed` with a one-line reason; the traceback goes to
  `runs/<id>/error.log`. A job whose `should_stop()` fired is marked `cancelled`.

Job kinds of the tests: `JOB_KINDS` holds only the product's kinds, and nothing read from outside
the code (an environment variable, a run's config) can add one, so no input can make the worker
import a module of its choosing. Tests add theirs in-process (`monkeypatch.setitem(JOB_KINDS,
...)`) and, for a worker in its own process, point `WORKER_MODULE` at tests/jobkinds.py, which
adds them to JOB_KINDS and then runs this module's `main`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import Cancelled, InputError
from core.files import atomic_write, storage_input_error
from core.workspace.store import RunRecord, Workspace

IDLE_EXIT_S = 60.0
POLL_S = 0.5
HEARTBEAT_S = 5.0
CANCEL_CHECK_S = 0.5

# kind -> "module:function". Modules are imported only when a job of that kind runs.
JOB_KINDS: dict[str, str] = {
    "audit": "core.run.uploaded:audit_job",  # a training audit (core.run.pipeline), or one of uploaded models
    "explain-subgroup": "core.explain.subgroup:subgroup_job",
    "grid": "core.run.grid:grid_job",  # a study grid on Ray (core.run.grid)
}
WORKER_MODULE = "core.workspace.jobs"
"""The module `ensure_worker` runs with `python -m` (tests run tests/jobkinds.py instead)."""


@dataclass
class JobContext:
    """What a running job gets: its run, its artifact folder, progress and cancel hooks."""

    workspace: Workspace
    run: RunRecord
    run_dir: Path
    _last_cancel_check: float = field(default=0.0, repr=False)
    _cancelled: bool = field(default=False, repr=False)

    @property
    def config(self) -> dict:
        return self.run["config"]

    def report(self, event: dict) -> None:
        """Record a progress event (shown live in the dashboard)."""
        self.workspace.add_event(self.run["id"], event)

    def should_stop(self) -> bool:
        """True once a cancel was requested (checked against the store at most every 0.5 s)."""
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= CANCEL_CHECK_S:
            self._last_cancel_check = now
            self._cancelled = self.workspace.cancel_requested(self.run["id"])
        return self._cancelled

    def check_cancel(self) -> None:
        if self.should_stop():
            raise Cancelled()


def submit(workspace: Workspace, kind: str, name: str, config: dict, study_id: str | None = None,
           start_worker: bool = True, *, actor: str | None = None) -> str:
    """Queue a job owned by `actor` (None: the workspace's owner) and make sure a worker will run
    it; return the run id."""
    if kind not in JOB_KINDS:
        raise InputError(f"Unknown job kind '{kind}'", f"Known kinds: {', '.join(JOB_KINDS)}")
    run_id = workspace.create_run(kind, name, config, study_id=study_id, actor=actor)
    if start_worker:
        ensure_worker(workspace)
    return run_id


def ensure_worker(workspace: Workspace) -> bool:
    """Start a worker process unless one holds the workspace's lock; True if one was started."""
    if _lock_held(workspace):
        return False
    log = workspace.root / "logs" / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        subprocess.Popen([sys.executable, "-m", WORKER_MODULE, "--workspace", str(workspace.root)],
                         stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, cwd=str(Path(__file__).resolve().parents[2]))
    return True


def _lock_path(workspace: Workspace) -> Path:
    return workspace.root / "worker.lock"


def _lock_held(workspace: Workspace) -> bool:
    with open(_lock_path(workspace), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def run_worker(workspace: Workspace, idle_exit_s: float = IDLE_EXIT_S) -> int:
    """Process queued runs until idle for `idle_exit_s`; return the number of runs processed."""
    with open(_lock_path(workspace), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another worker owns this workspace
        processed, idle_since = 0, time.monotonic()
        while time.monotonic() - idle_since < idle_exit_s:
            workspace.recover_interrupted()
            run = workspace.claim_next_run()
            if run is None:
                time.sleep(POLL_S)
                continue
            execute(workspace, run)
            processed += 1
            idle_since = time.monotonic()
        return processed


def execute(workspace: Workspace, run: RunRecord) -> str:
    """Run one claimed run to a final status, whatever the job does; return that status."""
    run_dir = workspace.run_dir(run["id"])
    context = JobContext(workspace=workspace, run=run, run_dir=run_dir)
    stop_heartbeat = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(workspace, run["id"], stop_heartbeat), daemon=True)
    beat.start()
    try:
        metrics = resolve(run["kind"])(context)
        status, error = ("cancelled", "Cancelled by a reviewer.") if context.should_stop() else ("succeeded", None)
    except Cancelled:
        metrics, status, error = None, "cancelled", "Cancelled by a reviewer."
    except WorkerStopped:
        # Marked now rather than found later by recover_interrupted; the worker then exits.
        workspace.finish_run(run["id"], "interrupted", error="The job worker was stopped (SIGTERM) before the "
                             "run finished. Start it again on the Train page.")
        raise
    except InputError as problem:
        metrics, status, error = None, "failed", str(problem)
    except Exception as problem:  # a bug or a resource failure: keep the details, show one line
        storage = storage_input_error(problem) if isinstance(problem, OSError) else None
        metrics, status = None, "failed"
        if storage is not None:  # disk full or read-only: say so; a log would not fit either
            error = str(storage)
        else:
            with contextlib.suppress(OSError):
                atomic_write(run_dir / "error.log", traceback.format_exc())
            error = f"{type(problem).__name__}: {problem}".splitlines()[0][:300] + " (details in error.log)"
    finally:
        stop_heartbeat.set()
        beat.join()
    workspace.finish_run(run["id"], status, metrics=metrics, error=error)
    return status


def resolve(kind: str) -> Callable[[JobContext], dict]:
    if kind not in JOB_KINDS:
        raise InputError(f"Unknown job kind '{kind}'", f"Known kinds: {', '.join(JOB_KINDS)}")
    module_name, function_name = JOB_KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def _heartbeat(workspace: Workspace, run_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        with contextlib.suppress(Exception):  # a missed beat is harmless; a crash here is not
            workspace.heartbeat(run_id)


class WorkerStopped(BaseException):
    """The job worker got SIGTERM. A BaseException, so that no job's `except Exception` takes it
    for a failure: it unwinds the job (whose worker processes `core.run.parallel.Workers` stops),
    the run is marked interrupted and the worker exits."""


def _stop_worker(signum: int, _frame: object) -> None:
    raise WorkerStopped(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Equiscope job worker (started by the dashboard)")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--idle-exit", type=float, default=IDLE_EXIT_S)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_worker)
    try:
        run_worker(Workspace(args.workspace), idle_exit_s=args.idle_exit)
    except WorkerStopped:
        return 143  # 128 + SIGTERM, as if the signal had ended it
    return 0


if __name__ == "__main__":
    sys.exit(main())
