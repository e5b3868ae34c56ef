"""Independent CPU-bound tasks on every core, in worker processes, with cooperative cancel.

`Workers` gives results in the order of the tasks, whatever order they finish in. Each worker
process runs one thread of BLAS/OpenMP (two workers each spinning two threads on two cores
made small linear algebra 3-10x slower than one thread each). Processes are started with
"spawn": the caller may already hold torch's or OpenMP's threads, which a fork does not
survive safely. With one worker everything runs in this process instead (no start-up cost,
which for a worker importing torch and umap-learn is 2-5 s).

A worker can be given a `warm_up` to run when it starts, before its first task: the audit
compiles umap-learn's numba code there (8-10 s of CPU a process, not kept by numba's cache).

Tasks talk back while they run: `send_event(event)` inside a task reaches the `on_event` given
to Workers (from a worker process through a queue, drained while the caller waits), and
`stop_requested()` inside a task turns True once the caller's `should_stop` did, so a training
loop stops at its next step rather than at the end of its model.

`Workers.run` schedules tasks that make further tasks (a replicate's fine-tunings once its
encoder is pretrained): at most one task per worker is in flight, the highest priority first,
so the pool's queue never holds work behind a task that others wait for.

A task's large arrays travel as `core.data.mapped.Mapped` handles (a .npy file), alone or as
fields of a dataclass argument: the process that runs the task maps the file
(`core.data.mapped.resolve`), so neither the caller nor the pool's queue holds a copy of the
rows for every task waiting to run.
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing
import os
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from threadpoolctl import threadpool_limits

from core.data.mapped import resolve
from core.errors import Cancelled

MAX_WORKERS = 4  # the audit has 6-8 tasks by default; more processes only add memory


def default_workers() -> int:
    """One worker per CPU core available to this process, at most MAX_WORKERS."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_WORKERS, available))


Event = Callable[[dict], None]

# What `send_event` and `stop_requested` reach: in a worker process, set once by _start_worker
# (the pool's queue and stop flag); in this process, set by Workers while it runs a task inline.
_event_sink: Event | None = None
_stop_check: Callable[[], bool] | None = None


def send_event(event: dict) -> None:
    """From inside a task: a progress event for the caller's `on_event` (dropped if none)."""
    if _event_sink is not None:
        _event_sink(event)


def stop_requested() -> bool:
    """From inside a task: True once the caller asked to stop (poll it between steps)."""
    return _stop_check is not None and bool(_stop_check())


@dataclass(order=True)
class Task:
    """A unit of work for `Workers.run`: `function(*args)`; a lower `priority` runs first, then
    the order of adding. `key` names the result."""

    priority: int
    key: Hashable = field(compare=False)
    function: Callable[..., Any] = field(compare=False)
    args: tuple = field(default=(), compare=False)


def _start_worker(warm_up: Callable[[], Any] | None, events: Any = None, stop: Any = None) -> None:
    global _event_sink, _stop_check
    if events is not None:
        _event_sink, _stop_check = events.put, stop.is_set
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
    `on_event` receives the tasks' `send_event` events; `should_stop` is the caller's cancel
    check, polled while waiting (and, through `stop_requested`, by the tasks themselves).
    """

    def __init__(self, workers: int, warm_up: Callable[[], Any] | None = None, *, on_event: Event | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.workers = workers
        self.warm_up = warm_up  # run by each worker process as it starts (picklable); not inline
        self.on_event = on_event
        self.should_stop = should_stop
        self._pool: ProcessPoolExecutor | None = None
        self._events: Any = None
        self._stop: Any = None

    def __enter__(self) -> Workers:
        if self.workers > 1:
            context = multiprocessing.get_context("spawn")
            # A SimpleQueue, not a Queue: Queue.put hands the event to a feeder thread that writes it
            # later, so a task's result could reach the caller before its last events, which the
            # final drain then missed (seen: a task's two events lost, tests/unit/test_parallel.py).
            # SimpleQueue.put writes to the pipe before it returns, so before the task's result.
            self._events, self._stop = context.SimpleQueue(), context.Event()
            self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_start_worker,
                                             initargs=(self.warm_up, self._events, self._stop), mp_context=context)
        return self

    def __exit__(self, error_type: type | None, *_: object) -> None:
        if self._pool is None:
            return
        if error_type is None:
            self._pool.shutdown(wait=True)
            return
        # After a cancel or a failure nothing the workers compute is used: drop the tasks not
        # started and stop the processes now, rather than wait for their current task to end.
        self._stop.set()
        processes = list((self._pool._processes or {}).values())  # no public way before Python 3.14
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)

    def submit(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Future | _Later:
        if self._pool is None:
            return _Later(function, args, kwargs)
        return self._pool.submit(_call, function, args, kwargs)

    def gather(self, futures: Sequence[Future | _Later], *, should_stop: Callable[[], bool] | None = None,
               on_done: Callable[[int, int, Any], None] | None = None, poll_s: float = 0.5) -> list[Any]:
        """The tasks' results in the order given. should_stop is polled between tasks (and every
        `poll_s` seconds while they run); when it returns True, `core.errors.Cancelled` is raised.
        on_done(position, number finished so far, result) is called as each task ends. A task's
        exception is raised here."""
        should_stop = should_stop or self.should_stop
        results: list[Any] = [None] * len(futures)
        if self._pool is None:
            for index, later in enumerate(futures):
                _stop_if(should_stop)
                results[index] = self._inline(later, should_stop)
                if on_done is not None:
                    on_done(index, index + 1, results[index])
            return results
        pending = {future: index for index, future in enumerate(futures)}
        finished = 0
        while pending:
            done, _ = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
            self._forward_events()
            for future in sorted(done, key=pending.get):
                index = pending.pop(future)
                results[index] = future.result()
                finished += 1
                if on_done is not None:
                    on_done(index, finished, results[index])
            self._stop_if(should_stop)
        self._forward_events()
        return results

    def run(self, tasks: Iterable[Task], *, on_done: Callable[[Task, Any], Iterable[Task]] | None = None,
            poll_s: float = 0.25) -> dict[Hashable, Any]:
        """Run `tasks` and the tasks their `on_done(task, result)` returns, at most one per worker
        at a time, the lowest `priority` first; return {key: result}. Cancel and task errors as in
        `gather`. Keys must be unique."""
        order = itertools.count()
        ready: list[tuple[Task, int, Task]] = []

        def add(new: Iterable[Task]) -> None:
            for task in new:
                heapq.heappush(ready, (task, next(order), task))

        add(tasks)
        results: dict[Hashable, Any] = {}
        running: dict[Future | _Later, Task] = {}
        while ready or running:
            while ready and len(running) < max(self.workers, 1):
                task = heapq.heappop(ready)[2]
                running[self.submit(task.function, *task.args)] = task
            if self._pool is None:
                (later, task), = running.items()
                del running[later]
                _stop_if(self.should_stop)
                done = [(task, self._inline(later, self.should_stop))]
            else:
                finished, _ = wait(running, timeout=poll_s, return_when=FIRST_COMPLETED)
                self._forward_events()
                self._stop_if(self.should_stop)
                done = [(running.pop(future), future.result()) for future in finished]
            for task, result in done:
                results[task.key] = result
                add(on_done(task, result) if on_done is not None else ())
        self._forward_events()
        return results

    def _inline(self, later: _Later, should_stop: Callable[[], bool] | None) -> Any:
        """Run a task in this process, its events and stop checks wired to the caller's."""
        global _event_sink, _stop_check
        saved = _event_sink, _stop_check
        _event_sink, _stop_check = self.on_event, should_stop
        try:
            return later.result()
        finally:
            _event_sink, _stop_check = saved

    def _forward_events(self) -> None:
        """Hand the worker processes' events to on_event, in the order they were sent."""
        while self._events is not None and not self._events.empty():
            event = self._events.get()
            if self.on_event is not None:
                self.on_event(event)

    def _stop_if(self, should_stop: Callable[[], bool] | None) -> None:
        if should_stop is not None and should_stop():
            self._stop.set()  # the tasks stop at their next step (stop_requested)
            raise Cancelled()


class _Later:
    """A task kept to be run in this process when its result is asked for."""

    def __init__(self, function: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self.function, self.args, self.kwargs = function, args, kwargs

    def result(self) -> Any:
        return _call(self.function, self.args, self.kwargs)


def _call(function: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """Run a task where it was sent, its `Mapped` arguments read first (module docstring)."""
    return function(*[resolve(arg) for arg in args], **{name: resolve(arg) for name, arg in kwargs.items()})


def _stop_if(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled()
