"""Background jobs: queue in order, report progress, fail with a reason, cancel, survive kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from core import jobs
from core.store import Workspace


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
    workspace.request_cancel(cancelled)
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
    workspace.request_cancel(run)
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
    worker = subprocess.Popen([sys.executable, "-m", "core.jobs", "--workspace", str(tmp_path)])
    assert wait_for(lambda: len(workspace.events(victim)) >= 2)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    later = jobs.submit(workspace, "diagnostic", "later", {"steps": 1})
    assert wait_for(lambda: workspace.get_run(later)["status"] == "succeeded")
    assert workspace.get_run(victim)["status"] == "interrupted"
