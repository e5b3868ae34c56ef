"""`equiscope serve`: start the dashboard (Streamlit) on this machine.

Bound to 127.0.0.1 unless `--host` says otherwise; any other address needs a login
(core/workspace/auth.py): OpenID Connect when `.streamlit/secrets.toml` has an `[auth]` section, else
the workspace's passphrase, set with `--set-passphrase` (prompted) or `EQUISCOPE_PASSPHRASE`
(for scripts; hashed, then removed from the environment). Without either it refuses to start.

Stopping: SIGTERM, SIGINT (Ctrl+C) or SIGHUP to this process stops the Streamlit server too
(forwarded; killed if it has not stopped within a few seconds), and the exit code is 128 + the
signal's number. The workspace's job worker is a separate process that outlives the server by
design: it finishes the run in progress and then exits when idle (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.workspace import auth
from core.errors import InputError
from core.processes import run_until_stopped
from core.workspace.store import DEFAULT_WORKSPACE, Workspace

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
LOOPBACK = auth.LOOPBACK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--workspace", default=str(DEFAULT_WORKSPACE),
                        help="folder for studies, runs and notes (default ./equiscope-workspace)")
    parser.add_argument("--dataset", help="bundled dataset to open first, e.g. adult")
    parser.add_argument("--set-passphrase", action="store_true",
                        help="ask for the passphrase reviewers must enter when --host is not 127.0.0.1 "
                             "(stored only as a salted hash in the workspace)")
    parser.add_argument("--shared-edits", choices=["on", "off"],
                        help="let any reviewer cancel any run (default off: only the one who started it); "
                             "kept in the workspace")


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise InputError(f"Port {args.port} is not a valid port", "Use a number from 1 to 65535, e.g. 8501")
    workspace = Workspace(args.workspace)  # creates it, recovers interrupted runs, checks it is writable
    passphrase = auth.passphrase_from_environment()
    if args.set_passphrase:
        passphrase = _prompt_passphrase()
    if args.shared_edits:
        workspace.set_setting(auth.SHARED_EDITS_KEY, args.shared_edits)
    if passphrase:
        auth.set_passphrase(workspace, passphrase)
    mode = auth.serve_mode(args.host, workspace)
    env = dict(os.environ, EQUISCOPE_WORKSPACE=str(workspace.root), **{auth.AUTH_ENV: mode})
    env.setdefault("NUMBA_CACHE_DIR", str(workspace.root / ".cache" / "numba"))
    if args.dataset:
        env["EQUISCOPE_DATASET"] = args.dataset
    if mode != "none":
        print(f"Serving on {args.host}: other machines on the network can reach the dashboard; "
              f"reviewers log in with {'OpenID Connect' if mode == 'oidc' else 'the passphrase'}.",
              file=sys.stderr)
    command = [sys.executable, "-m", "streamlit", "run", str(APP),
               "--server.address", args.host, "--server.port", str(args.port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
               "--server.maxUploadSize", str(max(1, _max_upload_bytes() // (1024 * 1024)))]
    print(f"Equiscope dashboard: http://{'localhost' if auth.is_loopback(args.host) else args.host}:{args.port} "
          f"(workspace {workspace.root}); stop with Ctrl+C", file=sys.stderr)
    return run_until_stopped(command, env=env)


def _prompt_passphrase() -> str:
    import getpass

    first = getpass.getpass("Passphrase for reviewers: ")
    if getpass.getpass("Same passphrase again: ") != first:
        raise InputError("The two passphrases differ", "Run the command again and type the same one twice")
    return first


def _max_upload_bytes() -> int:
    from core.data.loading import LARGEST_UPLOAD_BYTES  # core.data loads scikit-learn: only when serving

    return LARGEST_UPLOAD_BYTES
