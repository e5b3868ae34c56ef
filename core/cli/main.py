"""`equiscope` on the command line.

Exit codes: 0 success; 2 bad input, with one plain line on stderr saying what is wrong and
how to fix it; 1 an internal error, with a pointer to a log file holding the traceback
(printed only with --debug). Each command is a thin module in core/cli/ over core.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import traceback
from datetime import datetime
from pathlib import Path

from core import __version__
from core.errors import InputError

# Each command is a module in core/commands with `add_arguments(parser)` and `run(args) -> int`.
# Modules import heavy libraries (torch, umap) inside `run`, so `--help` stays fast.
COMMANDS: dict[str, str] = {
    "datasets": "list the bundled example datasets",
    "inspect": "profile a table: columns, kinds, missing values, personal data, groups, proxies",
    "serve": "start the dashboard in the browser (binds 127.0.0.1 unless --host says otherwise)",
    "pretrain": "build a study and pretrain an encoder with a self-supervised method (scarf, vime, ...)",
    "finetune": "fine-tune a pretrained encoder with each strategy, next to a supervised baseline",
    "audit": "run the whole audit: pretrain, fine-tune every strategy and a supervised baseline, audit",
    "explain": "explain one row's decision (LIME over the original columns) and flip its sensitive attributes",
    "mitigations": "list the mitigations an audit can add (--mitigations), each with one line and its cost",
    "grid": "a study grid on Ray: every SSL method x strategy x label fraction, each an audit, verdicts over the grid",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as InputError (exit 2, one line) instead of usage spam."""

    def error(self, message: str):  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}", f"Run '{self.prog} --help' for the options")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="equiscope", description="Audit whether self-supervised pretraining makes a "
                                                    "tabular model fairer, on your own data.")
    parser.add_argument("--version", action="version", version=f"equiscope {__version__}")
    parser.add_argument("--debug", action="store_true", help="print tracebacks of internal errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"core.cli.{name}")
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            parser.print_help()
            return 2
        return int(args.run(args) or 0)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # any other exception is a bug: keep the details, show one line
        from core.files import storage_input_error

        problem = storage_input_error(error) if isinstance(error, OSError) else None
        if problem is not None:  # disk full, read-only, no permission: the user can fix that
            print(f"error: {problem}", file=sys.stderr)
            return 2
        log = _write_crash_log(argv)
        if debug:
            traceback.print_exc()
        print(f"internal error: Equiscope failed unexpectedly; details are in {log} "
              "(rerun with --debug to print them)", file=sys.stderr)
        return 1


def _write_crash_log(argv: list[str]) -> Path:
    folder = Path(os.environ.get("EQUISCOPE_LOG_DIR", Path(tempfile.gettempdir()) / "equiscope-logs"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    path.write_text(f"equiscope {__version__}\nargs: {argv}\n\n{traceback.format_exc()}", encoding="utf-8")
    return path


def print_json(data: object) -> None:
    """Write `data` as indented JSON to stdout (what --json options print)."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    sys.exit(main())
