"""Processes: whether one is still alive (a writer of a temporary file, a run's worker, an
audit), and running a child server that stops when we are asked to stop (`equiscope serve`)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


# Signals that ask a server to stop: a supervisor or `docker stop` (TERM), Ctrl+C (INT), a
# closed terminal or `systemctl reload`-style hang-up (HUP).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE_S = 5.0


def run_until_stopped(command: list[str], env: dict[str, str] | None = None, grace_s: float = STOP_GRACE_S) -> int:
    """Run `command` as a child and stop it when this process is asked to stop.

    SIGTERM, SIGINT and SIGHUP received here are forwarded to the child as SIGTERM (the
    child runs in its own process group, so a Ctrl+C in the terminal reaches it once, through
    here). A child still running `grace_s` seconds later is killed. On Linux the child also
    gets SIGTERM if this process dies without running any handler (SIGKILL), so it is never
    left serving on its own.

    Returns the child's exit code when it ended by itself, else 128 + the number of the
    signal that stopped us (143 for SIGTERM, 130 for SIGINT, 129 for SIGHUP), as a shell
    reports a process ended by that signal.
    """
    received: list[int] = []
    child = subprocess.Popen(command, env=env, process_group=0, preexec_fn=_die_with_parent)

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)

    previous = {signum: signal.signal(signum, forward) for signum in STOP_SIGNALS}
    deadline: float | None = None
    try:
        while True:
            try:  # short waits: a handler runs between them (a blocking wait would resume after it)
                code = child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if received and deadline is None:
                    deadline = time.monotonic() + grace_s
                if deadline is not None and time.monotonic() >= deadline:  # asked to stop; it did not
                    child.kill()
                    code = child.wait()
                    break
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 + received[0] if received else code


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies (prctl
    PR_SET_PDEATHSIG); elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
