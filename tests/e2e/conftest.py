"""Real-browser tests: the dashboard served by Streamlit, driven in Debian's Chromium.

A session fixture starts `streamlit run dashboard/app.py` on a free port with a temporary
workspace and EQUISCOPE_DATASET=adult (what `make run` does), waits for /_stcore/health, and
stops it at the end. The pytest-playwright fixtures are overridden to launch /usr/bin/chromium
(Playwright cannot download browsers here) with the flags from ../shared/notes/browser-testing.md.
A missing browser fails the test with the command that installs it: never a skip.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
INSTALL_HINT = "install it with: DEBIAN_FRONTEND=noninteractive apt-get update && apt-get install -y chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"
START_TIMEOUT_S = 60.0


def chromium_problem() -> str | None:
    """Why the browser tests cannot run here, or None. In CI (CI=true) and everywhere else a
    missing browser is a failure with this message, never a skip."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return None
    where = "in CI (CI=true)" if os.environ.get("CI", "").lower() == "true" else "on this machine"
    return f"Chromium is not installed at {CHROMIUM} {where}; the browser tests need it: {INSTALL_HINT}"


@pytest.fixture(scope="session")
def missing_browser() -> str | None:
    return chromium_problem()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().decode().strip() == "ok"
    except OSError:
        return False


@pytest.fixture(scope="session")
def e2e_workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-workspace")


@pytest.fixture(scope="session")
def app_url(e2e_workspace, tmp_path_factory) -> str:
    """The running dashboard's URL (one server for the whole session)."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("e2e-server") / "streamlit.log"
    env = dict(os.environ, EQUISCOPE_WORKSPACE=str(e2e_workspace), EQUISCOPE_DATASET="adult",
               NUMBA_CACHE_DIR=str(ROOT / ".cache" / "numba"))
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
               "--client.toolbarMode", "minimal"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"The dashboard did not start (exit code {process.poll()}):\n{log_path.read_text()[-3000:]}",
                        pytrace=False)
        time.sleep(0.2)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    problem = chromium_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 1400}}


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where the tests save their screenshots: docs/screenshots when EQUISCOPE_SCREENSHOTS=1 (to
    refresh the committed pictures deliberately), otherwise a temporary folder, so that a test run
    never dirties the checkout."""
    if os.environ.get("EQUISCOPE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")
