"""core.run.parallel.Workers: results in task order, errors and cancels, the warm-up each worker runs
as it starts, and worker processes stopped at once when the run fails or is cancelled."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from core.errors import Cancelled
from core.run.parallel import Task, Workers, send_event, stop_requested
from core.processes import pid_alive


def square_after(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value * value


def pid_and(value: int) -> tuple[int, int]:
    time.sleep(0.2)  # long enough that both workers take a task
    return os.getpid(), value


def fail(message: str) -> None:
    raise ValueError(message)


def note_pid(folder: str) -> None:
    (Path(folder) / f"{os.getpid()}.warm").touch()


def failing_warm_up() -> None:
    raise RuntimeError("no head start today")


def sleep_and_report(seconds: float, folder: str) -> None:
    (Path(folder) / f"{os.getpid()}.started").touch()
    time.sleep(seconds)


def talk(value: int) -> int:
    """A task that reports two events while it runs."""
    send_event({"value": value, "step": 1})
    send_event({"value": value, "step": 2})
    return value


def step_until_stopped(steps: int) -> int:
    """A training loop's shape: a short step, then a look at stop_requested; returns the steps done."""
    for step in range(steps):
        if stop_requested():
            return step
        time.sleep(0.02)
    return steps


@pytest.mark.parametrize("workers", [1, 2])
def test_events_sent_inside_tasks_reach_the_caller(workers):
    events = []
    with Workers(workers, on_event=events.append) as pool:
        assert pool.gather([pool.submit(talk, value) for value in range(3)]) == [0, 1, 2]
    assert sorted((e["value"], e["step"]) for e in events) == [(v, s) for v in range(3) for s in (1, 2)]
    for value in range(3):  # each task's events arrive in the order it sent them
        assert [e["step"] for e in events if e["value"] == value] == [1, 2]


def test_a_task_sees_the_callers_stop_at_its_next_step():
    """Inline (one worker), the task itself polls the caller's should_stop through stop_requested:
    it stops after a few of its 500 steps rather than at its end."""
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with Workers(1, should_stop=should_stop) as pool:
        done = pool.run([Task(0, "loop", step_until_stopped, (500,))])
    assert done["loop"] < 10


def test_a_worker_process_reads_the_pools_stop_flag_and_queue(monkeypatch):
    """What each worker process runs as it starts wires stop_requested to the pool's stop flag
    and send_event to its queue (run here, in this process, on the same kinds of objects)."""
    import multiprocessing
    import queue as queues

    from core.run import parallel

    monkeypatch.setattr(parallel, "_event_sink", None)
    monkeypatch.setattr(parallel, "_stop_check", None)
    monkeypatch.setattr(parallel, "threadpool_limits", lambda limits: None)
    context = multiprocessing.get_context("spawn")
    events, stop = queues.Queue(), context.Event()
    parallel._start_worker(None, events, stop)
    assert not stop_requested()
    stop.set()
    assert stop_requested()
    send_event({"step": 3})
    assert events.get_nowait() == {"step": 3}


@pytest.mark.parametrize("workers", [1, 2])
def test_run_starts_follow_up_tasks_and_runs_the_lowest_priority_first(workers):
    """A finished task's on_done adds tasks; with one worker the order is by priority, then by
    the order of adding; every result is kept under its key."""
    order = []

    def on_done(task, result):
        order.append(task.key)
        return [Task(0, f"after {task.key}", square_after, (0, result))] if task.key in ("a", "b") else []

    with Workers(workers) as pool:
        results = pool.run([Task(2, "c", square_after, (0, 5)), Task(1, "a", square_after, (0, 2)),
                            Task(1, "b", square_after, (0, 3))], on_done=on_done)
    assert results == {"a": 4, "b": 9, "c": 25, "after a": 16, "after b": 81}
    if workers == 1:
        assert order == ["a", "after a", "b", "after b", "c"]


@pytest.mark.parametrize("workers", [1, 2])
def test_results_come_in_task_order_whatever_finishes_first(workers):
    with Workers(workers) as pool:
        futures = [pool.submit(square_after, 0.6 - 0.2 * i, i) for i in range(3)]
        done = []
        results = pool.gather(futures, on_done=lambda index, finished, result: done.append((index, result)))
    assert results == [0, 1, 4]
    assert sorted(done) == [(0, 0), (1, 1), (2, 4)]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_task_error_is_raised_by_gather(workers):
    with pytest.raises(ValueError, match="bad row"), Workers(workers) as pool:
        pool.gather([pool.submit(square_after, 0, 2), pool.submit(fail, "bad row")])


@pytest.mark.parametrize("workers", [1, 2])
def test_should_stop_cancels_between_tasks(workers):
    with pytest.raises(Cancelled), Workers(workers) as pool:
        pool.gather([pool.submit(square_after, 0.3, i) for i in range(4)], should_stop=lambda: True, poll_s=0.05)


def test_each_worker_runs_the_warm_up_once_before_its_tasks(tmp_path):
    with Workers(2, warm_up=partial(note_pid, str(tmp_path))) as pool:
        results = pool.gather([pool.submit(pid_and, i) for i in range(6)])
    warmed = {int(p.stem) for p in tmp_path.glob("*.warm")}
    assert [value for _, value in results] == list(range(6))
    assert {pid for pid, _ in results} <= warmed and len(warmed) == 2
    assert os.getpid() not in warmed


def test_a_failing_warm_up_does_not_stop_the_tasks():
    with Workers(2, warm_up=failing_warm_up) as pool:
        assert pool.gather([pool.submit(square_after, 0, i) for i in range(3)]) == [0, 1, 4]


def test_after_a_failure_the_running_tasks_are_stopped_not_waited_for(tmp_path):
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the run failed"), Workers(2) as pool:
        pool.submit(sleep_and_report, 120, str(tmp_path))
        pool.submit(sleep_and_report, 120, str(tmp_path))
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("*.started"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        raise RuntimeError("the run failed")
    pids = [int(p.stem) for p in tmp_path.glob("*.started")]
    assert len(pids) == 2 and not any(pid_alive(pid) for pid in pids)
    assert time.monotonic() - started < 100  # well before the 120 s tasks could have ended


def test_warm_up_umap_compiles_what_the_projection_uses():
    """In a fresh process (this one may have compiled it already), umap-learn's kNN smoothing
    has no compiled signature before the warm-up and has one after."""
    script = """
import umap.umap_ as umap_
from core.audit.representation import warm_up_umap
before = len(umap_.smooth_knn_dist.signatures)
warm_up_umap(9_000)
print(before, len(umap_.smooth_knn_dist.signatures))
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert before == 0 and after >= 1
