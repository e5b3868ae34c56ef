"""Stopping `equiscope serve` stops the dashboard (issue: orphaned Streamlit servers).

A real `equiscope serve` is started on a free port and stopped with SIGTERM, SIGINT or SIGHUP,
as systemd, `docker stop`, Ctrl+C or a closed terminal would: the command exits with 128 + the
signal's number, its Streamlit child is gone and the port is free. A child that ignores SIGTERM
is killed after the grace period.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Free for the next server: nothing listens on it. SO_REUSEADDR, as servers set it, so the
    health check's connection waiting out TIME_WAIT does not count as taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
            return response.read() == b"ok"
    except OSError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["TERM", "INT", "HUP"])
def test_a_stop_signal_stops_the_streamlit_server_and_frees_the_port(signum, tmp_path):
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "core.cli.main", "serve", "--port", str(port),
                              "--workspace", str(tmp_path / "ws")], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: healthy(port), timeout=90), "the dashboard never answered"
        servers = children(serve.pid)
        assert servers, "equiscope serve runs Streamlit as its child"
        serve.send_signal(signum)
        assert serve.wait(timeout=30) == 128 + signum
        assert wait_until(lambda: all(gone(pid) for pid in servers), timeout=10), "Streamlit outlived serve"
        assert wait_until(lambda: port_is_free(port), timeout=10)
    finally:
        if serve.poll() is None:
            serve.kill()


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    pid_file = tmp_path / "child.pid"
    stubborn = f"import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
               f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    supervisor = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from core.processes import run_until_stopped
        sys.exit(run_until_stopped([sys.executable, "-c", {stubborn!r}], grace_s=1.0))
        """)], cwd=ROOT)
    try:
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30)
        child = int(pid_file.read_text())
        started = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=20) == 128 + signal.SIGTERM
        assert time.monotonic() - started < 10
        assert wait_until(lambda: gone(child), timeout=5)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()


def test_a_child_that_ends_by_itself_gives_its_own_exit_code():
    from core.processes import run_until_stopped

    assert run_until_stopped([sys.executable, "-c", "raise SystemExit(3)"]) == 3


def test_the_server_is_stopped_even_when_serve_is_killed_outright(tmp_path):
    """SIGKILL runs no handler: the child learns of its parent's death from Linux (PDEATHSIG)."""
    pid_file = tmp_path / "child.pid"
    sleeper = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    supervisor = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from core.processes import run_until_stopped
        sys.exit(run_until_stopped([sys.executable, "-c", {sleeper!r}]))
        """)], cwd=ROOT)
    try:
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30)
        child = int(pid_file.read_text())
        os.kill(supervisor.pid, signal.SIGKILL)
        supervisor.wait(timeout=10)
        assert wait_until(lambda: gone(child), timeout=10)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
