"""`equiscope serve`: start the dashboard (Streamlit) on this machine."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from core.data.loading import MAX_UPLOAD_BYTES
from core.errors import InputError
from core.store import DEFAULT_WORKSPACE, Workspace

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--workspace", default=str(DEFAULT_WORKSPACE),
                        help="folder for studies, runs and notes (default ./equiscope-workspace)")
    parser.add_argument("--dataset", help="bundled dataset to open first, e.g. adult")


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise InputError(f"Port {args.port} is not a valid port", "Use a number from 1 to 65535, e.g. 8501")
    workspace = Workspace(args.workspace)  # creates it, recovers interrupted runs, checks it is writable
    env = dict(os.environ, EQUISCOPE_WORKSPACE=str(workspace.root))
    env.setdefault("NUMBA_CACHE_DIR", str(workspace.root / ".cache" / "numba"))
    if args.dataset:
        env["EQUISCOPE_DATASET"] = args.dataset
    if args.host not in LOOPBACK:
        print(f"warning: serving on {args.host}: other machines on the network can reach the dashboard.",
              file=sys.stderr)
    command = [sys.executable, "-m", "streamlit", "run", str(APP),
               "--server.address", args.host, "--server.port", str(args.port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
               "--server.maxUploadSize", str(max(1, MAX_UPLOAD_BYTES // (1024 * 1024)))]
    print(f"Equiscope dashboard: http://{'localhost' if args.host in LOOPBACK else args.host}:{args.port} "
          f"(workspace {workspace.root}); stop with Ctrl+C", file=sys.stderr)
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 0
