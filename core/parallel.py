"""Independent CPU-bound tasks on every core, in worker processes, with cooperative cancel.

    results = run_tasks([(function, args, kwargs), ...], workers=0)   # 0: one per core

Results come back in the order of the tasks, whatever order they finish in. Each worker
process runs one thread of BLAS/OpenMP (two workers each spinning two threads on two cores
made small linear algebra 3-10x slower than one thread each). Processes are started with
"spawn": the caller may already hold torch's or OpenMP's threads, which a fork does not
survive safely. With one worker, or one task, everything runs in this process instead (no
start-up cost, which for a worker importing umap-learn is 2-5 s).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

Task = tuple[Callable[..., Any], tuple, dict]
MAX_WORKERS = 4  # the audit has 6-8 tasks by default; more processes only add memory


def default_workers() -> int:
    """One worker per CPU core available to this process, at most MAX_WORKERS."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_WORKERS, available))


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def run_tasks(tasks: Sequence[Task], *, workers: int = 0, should_stop: Callable[[], bool] | None = None,
              on_done: Callable[[int, int], None] | None = None, poll_s: float = 0.5) -> list[Any]:
    """Run `function(*args, **kwargs)` for every task; return their results in task order.

    workers: processes to use (0: `default_workers()`). should_stop is polled between tasks
    (and every `poll_s` seconds while they run); when it returns True, tasks not started are
    dropped and `core.jobs.Cancelled` is raised (tasks already running finish in the
    background). on_done(task index, number finished so far) is called as each task ends. A
    task's exception is raised here.
    """
    workers = min(workers or default_workers(), len(tasks))
    if workers <= 1:
        return _run_here(tasks, should_stop, on_done)
    results: list[Any] = [None] * len(tasks)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_one_thread)
    try:
        pending: dict[Future, int] = {pool.submit(function, *args, **kwargs): index
                                      for index, (function, args, kwargs) in enumerate(tasks)}
        finished = 0
        while pending:
            done, _ = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                results[index] = future.result()
                finished += 1
                if on_done is not None:
                    on_done(index, finished)
            _stop_if(should_stop)
    except BaseException:  # cancelled, or a task failed: drop what has not started, do not wait
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _run_here(tasks: Sequence[Task], should_stop: Callable[[], bool] | None,
              on_done: Callable[[int, int], None] | None) -> list[Any]:
    results = []
    for index, (function, args, kwargs) in enumerate(tasks):
        _stop_if(should_stop)
        results.append(function(*args, **kwargs))
        if on_done is not None:
            on_done(index, index + 1)
    return results


def _stop_if(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        from core.jobs import Cancelled

        raise Cancelled()
