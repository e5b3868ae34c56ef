"""Background jobs: queue in order, report progress, fail with a reason, cancel, survive kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.processes import pid_alive
from core.workspace import jobs, store
from core.run.pipeline import AuditConfig
from core.workspace.store import Workspace

pytestmark = pytest.mark.usefixtures("test_job_kinds")  # the "diagnostic" kind of tests/jobkinds.py


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_jobs_queue_run_in_order_fail_and_cancel(tmp_path):
    workspace = Workspace(tmp_path)
    ok = jobs.submit(workspace, "diagnostic", "ok", {"steps": 3, "delay_s": 0.05}, start_worker=False)
    bad = jobs.submit(workspace, "diagnostic", "bad", {"steps": 3, "fail_at_step": 2}, start_worker=False)
    cancelled = jobs.submit(workspace, "diagnostic", "cancel-me", {"steps": 3}, start_worker=False)
    workspace.request_cancel(cancelled, actor=None)
    assert jobs.run_worker(workspace, idle_exit_s=0.3) == 2
    assert workspace.get_run(ok)["status"] == "succeeded"
    assert workspace.get_run(ok)["metrics"] == {"steps": 3}
    assert [e["step"] for e in workspace.events(ok)] == [1, 2, 3]
    assert (workspace.run_dir(ok) / "result.txt").read_text() == "3 steps\n"
    failed = workspace.get_run(bad)
    assert failed["status"] == "failed" and "diagnostic failure at step 2" in failed["error"]
    assert "RuntimeError" in (workspace.run_dir(bad) / "error.log").read_text()
    assert workspace.get_run(cancelled)["status"] == "cancelled"


def test_cancel_while_running_stops_at_the_next_step(tmp_path):
    workspace = Workspace(tmp_path)
    run = jobs.submit(workspace, "diagnostic", "long", {"steps": 200, "delay_s": 0.05})
    assert wait_for(lambda: len(workspace.events(run)) >= 2)
    workspace.request_cancel(run, actor=None)
    assert wait_for(lambda: workspace.get_run(run)["status"] == "cancelled")
    assert len(workspace.events(run)) < 200


def test_a_second_submit_reuses_the_running_worker(tmp_path):
    workspace = Workspace(tmp_path)
    first = jobs.submit(workspace, "diagnostic", "a", {"steps": 5, "delay_s": 0.1})
    assert wait_for(lambda: workspace.get_run(first)["status"] == "running")
    assert jobs.ensure_worker(workspace) is False
    second = jobs.submit(workspace, "diagnostic", "b", {"steps": 2, "delay_s": 0.05})
    assert wait_for(lambda: workspace.get_run(second)["status"] == "succeeded")
    assert workspace.get_run(first)["finished_at"] <= workspace.get_run(second)["started_at"]


def test_a_killed_worker_leaves_an_interrupted_run_and_the_queue_goes_on(tmp_path):
    workspace = Workspace(tmp_path)
    victim = jobs.submit(workspace, "diagnostic", "victim", {"steps": 500, "delay_s": 0.05}, start_worker=False)
    worker = subprocess.Popen([sys.executable, "-m", jobs.WORKER_MODULE, "--workspace", str(tmp_path)])
    assert wait_for(lambda: len(workspace.events(victim)) >= 2)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    later = jobs.submit(workspace, "diagnostic", "later", {"steps": 1})
    assert wait_for(lambda: workspace.get_run(later)["status"] == "succeeded")
    assert workspace.get_run(victim)["status"] == "interrupted"


def children_of(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_sigterm_marks_the_running_audit_interrupted_and_stops_its_worker_processes(tmp_path):
    workspace = Workspace(tmp_path)
    config = AuditConfig(data="german", target="credit", sensitive=["sex"], positive="good", epochs=50,
                         finetune_epochs=2, n_boot=30, strategies=["linear"], umap=False, workers=2,
                         encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16})
    run = jobs.submit(workspace, "audit", "stopped", config.to_dict(), start_worker=False)
    worker = subprocess.Popen([sys.executable, "-m", "core.workspace.jobs", "--workspace", str(tmp_path)])
    # Pretraining has begun, so the pool's two processes are up (the baseline trains in one).
    assert wait_for(lambda: any(e.get("stage") == "pretrain" and e.get("step") for e in workspace.events(run))
                    and len(children_of(worker.pid)) >= 2, timeout=120)
    pool = children_of(worker.pid)
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=60) == 143
    stopped = workspace.get_run(run)
    assert stopped["status"] == "interrupted" and "stopped (SIGTERM)" in stopped["error"]
    assert wait_for(lambda: not any(pid_alive(pid) for pid in pool), timeout=15)


def test_the_product_worker_records_a_cancelled_audit_as_cancelled(tmp_path):
    """`python -m core.workspace.jobs` runs jobs.py as `__main__`; a cancel raised by the audit must
    still be caught as one (it was once recorded "failed": two copies of the Cancelled class)."""
    workspace = Workspace(tmp_path)
    config = AuditConfig(data="german", target="credit", sensitive=["sex"], positive="good", epochs=50,
                         finetune_epochs=2, n_boot=30, strategies=["linear"], umap=False, workers=1,
                         encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16})
    run = jobs.submit(workspace, "audit", "cancelled", config.to_dict(), start_worker=False)
    worker = subprocess.Popen([sys.executable, "-m", "core.workspace.jobs", "--workspace", str(tmp_path),
                               "--idle-exit", "1"])
    assert wait_for(lambda: any(e.get("stage") == "pretrain" and e.get("step") for e in workspace.events(run)),
                    timeout=120)
    workspace.request_cancel(run, actor=None)
    assert worker.wait(timeout=120) == 0
    cancelled = workspace.get_run(run)
    assert cancelled["status"] == "cancelled" and cancelled["error"] == "Cancelled by a reviewer."
