"""Job kinds that only the tests use, and a job worker that knows them.

`diagnostic_job` does nothing but report steps, and optionally fail: it exercises the queue,
progress, cancel and failure paths of core.workspace.jobs end to end without training anything.

The product's worker (`python -m core.workspace.jobs`) knows only the product's kinds. A test
that needs a worker in its own process runs this module instead (`python -m tests.jobkinds
--workspace W`, from the repository root), which adds `TEST_JOB_KINDS` to `JOB_KINDS` and then
runs the worker's `main`. The fixture `test_job_kinds` (tests/conftest.py) does the same inside
the test process and points `jobs.WORKER_MODULE` here, so that `submit` starts this worker.
"""

from __future__ import annotations

import sys
import time

from core.errors import Cancelled
from core.files import atomic_write
from core.workspace import jobs

WORKER_MODULE = "tests.jobkinds"


def diagnostic_job(context: jobs.JobContext) -> dict:
    """Report `steps` events `delay_s` apart; raise at `fail_at_step` if the config says so."""
    steps = int(context.config.get("steps", 3))
    delay = float(context.config.get("delay_s", 0.1))
    for step in range(1, steps + 1):
        if context.should_stop():
            raise Cancelled()
        time.sleep(delay)
        context.report({"step": step, "total_steps": steps, "loss": 1.0 / step})
        if context.config.get("fail_at_step") == step:
            raise RuntimeError(f"diagnostic failure at step {step}")
    atomic_write(context.run_dir / "result.txt", f"{steps} steps\n")
    return {"steps": steps}


# kind -> "module:function", as in JOB_KINDS. `__name__` is this module's name however it was
# imported ("jobkinds" under pytest, "__main__" when it runs as the worker).
TEST_JOB_KINDS = {"diagnostic": f"{__name__}:diagnostic_job"}


if __name__ == "__main__":
    jobs.JOB_KINDS.update(TEST_JOB_KINDS)
    sys.exit(jobs.main())
