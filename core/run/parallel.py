"""Independent CPU-bound tasks on every core, in worker processes, with cooperative cancel.

`Workers` gives results in the order of the tasks, whatever order they finish in. Each worker
process runs one thread of BLAS/OpenMP (two workers each spinning two threads on two cores
made small linear algebra 3-10x slower than one thread each). Processes are started with
"spawn": the caller may already hold torch's or OpenMP's threads, which a fork does not
survive safely. With one worker everything runs in this process instead (no start-up cost,
which for a worker importing torch and umap-learn is 2-5 s).

A worker can be given a `warm_up` to run when it starts, before its first task: the audit
compiles umap-learn's numba code there (8-10 s of CPU a process, not kept by numba's cache),
while the workers would otherwise wait for pretraining to end.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from threadpoolctl import threadpool_limits

from core.errors import Cancelled

MAX_WORKERS = 4  # the audit has 6-8 tasks by default; more processes only add memory


def default_workers() -> int:
    """One worker per CPU core available to this process, at most MAX_WORKERS."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_WORKERS, available))


def _start_worker(warm_up: Callable[[], Any] | None) -> None:
    threadpool_limits(limits=1)
    if warm_up is not None:
        try:
            warm_up()
        except Exception:  # noqa: BLE001, S110 - only a head start: the task itself meets any real error
            pass


class Workers:
    """A pool of `workers` processes for independent tasks, or this process when workers <= 1.

        with Workers(2) as workers:
            first = workers.submit(function, *args)      # starts now in a worker process
            ...                                          # this process goes on meanwhile
            results = workers.gather([first, ...], should_stop=..., on_done=...)

    In this process (workers <= 1) a submitted task runs when it is gathered, in order.
    """

    def __init__(self, workers: int, warm_up: Callable[[], Any] | None = None) -> None:
        self.workers = workers
        self.warm_up = warm_up  # run by each worker process as it starts (picklable); not inline
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_start_worker,
                                             initargs=(self.warm_up,),
                                             mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, error_type: type | None, *_: object) -> None:
        if self._pool is None:
            return
        if error_type is None:
            self._pool.shutdown(wait=True)
            return
        # After a cancel or a failure nothing the workers compute is used: drop the tasks not
        # started and stop the processes now, rather than wait for their current task to end.
        processes = list((self._pool._processes or {}).values())  # no public way before Python 3.14
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)

    def submit(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Future | _Later:
        if self._pool is None:
            return _Later(function, args, kwargs)
        return self._pool.submit(function, *args, **kwargs)

    def gather(self, futures: Sequence[Future | _Later], *, should_stop: Callable[[], bool] | None = None,
               on_done: Callable[[int, int, Any], None] | None = None, poll_s: float = 0.5) -> list[Any]:
        """The tasks' results in the order given. should_stop is polled between tasks (and every
        `poll_s` seconds while they run); when it returns True, `core.errors.Cancelled` is raised.
        on_done(position, number finished so far, result) is called as each task ends. A task's
        exception is raised here."""
        results: list[Any] = [None] * len(futures)
        if self._pool is None:
            for index, later in enumerate(futures):
                _stop_if(should_stop)
                results[index] = later.result()
                if on_done is not None:
                    on_done(index, index + 1, results[index])
            return results
        pending = {future: index for index, future in enumerate(futures)}
        finished = 0
        while pending:
            done, _ = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=pending.get):
                index = pending.pop(future)
                results[index] = future.result()
                finished += 1
                if on_done is not None:
                    on_done(index, finished, results[index])
            _stop_if(should_stop)
        return results


class _Later:
    """A task kept to be run in this process when its result is asked for."""

    def __init__(self, function: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self.function, self.args, self.kwargs = function, args, kwargs

    def result(self) -> Any:
        return self.function(*self.args, **self.kwargs)


def _stop_if(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled()
