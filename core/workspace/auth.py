"""Who may use a dashboard served on the network, and what a reviewer may change.

Authentication (decided by `equiscope serve`, docs/reliability.md):
- Bound to a loopback address (the default, 127.0.0.1), the dashboard needs no login: only
  this machine can reach it, like the CLI.
- Bound elsewhere (`--host 0.0.0.0`), it needs one of two modes:
  - `oidc`: OpenID Connect through Streamlit's `st.login`, when `.streamlit/secrets.toml`
    (in the working directory or the home folder, where Streamlit looks) has an `[auth]`
    section. Streamlit needs Authlib for it (`pip install "streamlit[auth]"`).
  - `passphrase`: otherwise, one shared passphrase, stored only as a salted scrypt hash in
    the workspace settings (`auth.passphrase`): `{"algorithm": "scrypt", "n", "r", "p",
    "salt", "hash"}` with a random 16-byte salt. Checking uses `hmac.compare_digest`
    (constant time); the passphrase itself is never stored, logged or passed on.
  Without either, `serve` refuses to start.
- The mode reaches the dashboard in the environment variable `EQUISCOPE_AUTH`.

Shared edits (authorisation):
- Every run records the reviewer whose session created it (`runs.owner`): the OIDC e-mail,
  or the name given at the passphrase login. The CLI, the job worker and loopback sessions
  act as the workspace's owner (`actor` None) and may do anything.
- A run may be cancelled only by its owner, unless the workspace setting `shared_edits` is
  `on` (`equiscope serve --shared-edits on`). Review notes are append-only for everyone (the
  store has no way to edit or delete one), and results are only ever read.
- Who acts is passed explicitly: the store's methods that record or check it take an `actor`
  (`Workspace.create_run`, `Workspace.request_cancel`, `core.workspace.jobs.submit`), and the
  dashboard passes its session's reviewer. There is no global "current reviewer": Streamlit
  serves many sessions in one process, and core never imports Streamlit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tomllib
from pathlib import Path

from core.errors import InputError

AUTH_ENV = "EQUISCOPE_AUTH"
PASSPHRASE_ENV = "EQUISCOPE_PASSPHRASE"
MODES = ("none", "passphrase", "oidc")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PASSPHRASE_KEY = "auth.passphrase"
SHARED_EDITS_KEY = "shared_edits"
MIN_PASSPHRASE_CHARS = 10
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
"""scrypt cost: 16 MiB of memory and ~50 ms per check, which slows guessing, not reviewers."""


# -- passphrase ---------------------------------------------------------------------------------

def hash_passphrase(passphrase: str, salt: bytes | None = None) -> dict:
    """A salted scrypt record of `passphrase` (a new random salt unless one is given)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, dklen=32, **SCRYPT)
    return {"algorithm": "scrypt", **SCRYPT, "salt": salt.hex(), "hash": digest.hex()}


def check_passphrase(passphrase: str, record: dict) -> bool:
    """True if `passphrase` matches the record; the comparison takes constant time."""
    if record.get("algorithm") != "scrypt":
        return False
    try:
        salt, expected = bytes.fromhex(record["salt"]), bytes.fromhex(record["hash"])
        digest = hashlib.scrypt(str(passphrase).encode("utf-8"), salt=salt, dklen=len(expected),
                                n=int(record["n"]), r=int(record["r"]), p=int(record["p"]))
    except (KeyError, TypeError, ValueError):
        return False
    return hmac.compare_digest(digest, expected)


def set_passphrase(workspace, passphrase: str) -> None:
    """Store the salted hash of `passphrase` in the workspace (replacing any earlier one)."""
    if len(passphrase.strip()) < MIN_PASSPHRASE_CHARS:
        raise InputError(f"The passphrase is too short (at least {MIN_PASSPHRASE_CHARS} characters)",
                         "Choose a longer one, e.g. four unrelated words")
    workspace.set_setting(PASSPHRASE_KEY, json.dumps(hash_passphrase(passphrase)))


def has_passphrase(workspace) -> bool:
    return workspace.get_setting(PASSPHRASE_KEY) is not None


def verify_passphrase(workspace, passphrase: str) -> bool:
    """True if the workspace has a passphrase and `passphrase` is it."""
    stored = workspace.get_setting(PASSPHRASE_KEY)
    if stored is None:
        return False
    try:
        record = json.loads(stored)
    except ValueError:
        return False
    return isinstance(record, dict) and check_passphrase(passphrase, record)


# -- modes --------------------------------------------------------------------------------------

def is_loopback(host: str | None) -> bool:
    return bool(host) and host.strip("[]") in LOOPBACK


def secrets_files(cwd: Path | None = None) -> list[Path]:
    """Where Streamlit reads secrets: the home folder's and the working directory's."""
    return [Path.home() / ".streamlit" / "secrets.toml", (cwd or Path.cwd()) / ".streamlit" / "secrets.toml"]


def oidc_configured(files: list[Path] | None = None) -> Path | None:
    """The secrets file whose `[auth]` section configures OpenID Connect, or None.

    Streamlit needs `redirect_uri` and `cookie_secret`, and a provider: `client_id` (and
    the rest) in `[auth]` itself or in a named sub-section such as `[auth.google]`."""
    for path in files if files is not None else secrets_files():
        try:
            section = tomllib.loads(path.read_text(encoding="utf-8")).get("auth")
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(section, dict) or not {"redirect_uri", "cookie_secret"} <= set(section):
            continue
        if "client_id" in section or any(isinstance(v, dict) and "client_id" in v for v in section.values()):
            return path
    return None


def authlib_installed() -> bool:
    try:  # imported only to see whether it is installed
        import authlib  # noqa: F401
    except ImportError:
        return False
    return True


def serve_mode(host: str, workspace, files: list[Path] | None = None) -> str:
    """The login `equiscope serve --host HOST` needs; InputError when it cannot have one."""
    if is_loopback(host):
        return "none"
    oidc = oidc_configured(files)
    if oidc is not None:
        if not authlib_installed():
            raise InputError(f"OpenID Connect is configured in '{oidc}', but Streamlit's login needs Authlib",
                             'Install it with: pip install "streamlit[auth]"')
        return "oidc"
    if has_passphrase(workspace):
        return "passphrase"
    raise InputError(f"Serving on {host} lets other machines reach the dashboard, and no login is set up",
                     f"Set a passphrase with 'equiscope serve --host {host} --set-passphrase' (or "
                     f"{PASSPHRASE_ENV}=... for scripts), or configure OpenID Connect in .streamlit/secrets.toml")


# -- who is acting, and what they may change ----------------------------------------------------

def shared_edits(workspace) -> bool:
    return (workspace.get_setting(SHARED_EDITS_KEY, "off") or "off").lower() == "on"


def may_change(workspace, run: dict, actor: str | None) -> bool:
    """Whether `actor` (None: the workspace's owner) may cancel `run`."""
    owner = run.get("owner")
    return actor is None or owner is None or owner == actor or shared_edits(workspace)


def check_may_change(workspace, run: dict, actor: str | None, action: str = "cancel") -> None:
    """InputError unless `actor` may `action` the run (see the module docstring)."""
    if not may_change(workspace, run, actor):
        raise InputError(f"The run '{run['name']}' was started by {run['owner']}; only they can {action} it",
                         "Ask them to, or turn on shared edits: equiscope serve --shared-edits on")


def passphrase_from_environment() -> str | None:
    """EQUISCOPE_PASSPHRASE, removed from this process's environment once read."""
    return os.environ.pop(PASSPHRASE_ENV, None) or None
