"""The workspace: studies, runs, their progress and review notes, kept safe on disk.

A workspace is a folder holding `equiscope.sqlite` (SQLite in WAL mode, schema version in
`PRAGMA user_version`) and one artifact folder per run under `runs/<run_id>/`.

Safety rules, and why:
- Every write is one transaction begun with `BEGIN IMMEDIATE`, so two processes writing at
  once queue on SQLite's lock (busy timeout 30 s) instead of failing or interleaving.
- WAL journaling keeps the database consistent if a process is killed mid-write.
- Artifacts are written to a temporary file in the same folder, fsynced, then renamed over
  the target (`core.files.atomic_write`): a reader sees the old file or the new one, never half.
- A run records its process id, host and a heartbeat. When a workspace is opened, a run
  still `running` whose process is gone (same host) or whose heartbeat is older than
  `STALE_AFTER_S` is marked `interrupted`, keeping its partial artifacts for inspection
  or resumption.
- Connections are opened per operation: Streamlit serves each browser session in its own
  thread, and SQLite connections must not cross threads.

Names: a row of the `studies` table is a `StudyRecord` (what a reviewer saved on the Data page:
the table's fingerprint and set-up), not a `core.data.study.Study` (the data, split and fitted
encoder a run builds from it); a row of `runs` is a `RunRecord`. The SQL tables keep their names.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict

from core.errors import InputError
from core.processes import pid_alive
from core.workspace.auth import check_may_change

DEFAULT_WORKSPACE = Path("equiscope-workspace")
DB_NAME = "equiscope.sqlite"
STALE_AFTER_S = 120.0
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "interrupted")
NOTE_STATUSES = ("draft", "changes requested", "approved")

# Each entry upgrades the schema by one version; never edit a released entry, append one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE studies (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        dataset TEXT NOT NULL,
        dataset_sha256 TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        settings_json TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        study_id TEXT REFERENCES studies(id),
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        config_json TEXT NOT NULL DEFAULT '{}',
        metrics_json TEXT,
        progress_json TEXT,
        error TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        pid INTEGER,
        host TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        heartbeat_at REAL
    );
    CREATE INDEX runs_by_study ON runs(study_id, created_at);
    CREATE INDEX runs_by_status ON runs(status);
    CREATE TABLE run_events (
        run_id TEXT NOT NULL REFERENCES runs(id),
        seq INTEGER NOT NULL,
        event_json TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        study_id TEXT NOT NULL REFERENCES studies(id),
        run_id TEXT REFERENCES runs(id),
        author TEXT NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: the reviewer whose session created a run (core.workspace.auth: only they may cancel it).
    """
    ALTER TABLE runs ADD COLUMN owner TEXT;
    """,
    # 3: the reviewer's framing of a study: what the outcome does to the person, the measure chosen and why.
    """
    ALTER TABLE studies ADD COLUMN framing_json TEXT NOT NULL DEFAULT '{}';
    """,
]


class StudyRecord(TypedDict):
    """A saved study: one row of the `studies` table, its JSON columns decoded."""

    id: str
    name: str
    dataset: str  # a bundled dataset's name, or the uploaded file's safe name
    dataset_sha256: str
    spec: dict[str, Any]  # core.data.DatasetSpec.to_dict()
    settings: dict[str, Any]  # source, file_format, rows; stored_path and file_name for an upload
    created_at: str
    # The reviewer's framing (issue 17): outcome_effect "helps" | "harms", costlier_error, scarce,
    # intended_use; {} until set on the Fairness page (core.results.model_card reads it).
    framing: dict[str, Any]


class RunRecord(TypedDict):
    """A run (an audit, an explanation job, ...): one row of the `runs` table, JSON decoded."""

    id: str
    study_id: str | None
    kind: str
    name: str
    status: str  # one of RUN_STATUSES
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    progress: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    pid: int | None
    host: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    heartbeat_at: float | None
    owner: str | None  # the reviewer whose session created it; None: the workspace's owner


_STUDY_COLUMNS = "id, name, dataset, dataset_sha256, spec_json, settings_json, created_at"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Workspace:
    """A workspace folder: open it, and use its studies, runs and notes."""

    def __init__(self, root: Path | str = DEFAULT_WORKSPACE, *, recover: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "runs").mkdir(exist_ok=True)
        except OSError as error:
            raise InputError(f"Cannot create the workspace folder '{self.root}' ({error.strerror})",
                             "Choose a folder you can write to with --workspace") from None
        if not os.access(self.root, os.W_OK):
            raise InputError(f"The workspace folder '{self.root}' is not writable",
                             "Fix its permissions or choose another folder with --workspace")
        self.db_path = self.root / DB_NAME
        self._migrate()
        if recover:
            self.recover_interrupted()

    # -- connection -------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA busy_timeout = 30000")
        return connection

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolls back on error. Disk-full and read-only become InputError."""
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:  # SQLite has already rolled back after a full disk
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as error:
            raise _storage_error(error, self.root) from None
        finally:
            connection.close()

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        connection = self._connect()
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:  # e.g. a WAL database on a read-only disk
            raise _storage_error(error, self.root) from None
        finally:
            connection.close()

    def _migrate(self) -> None:
        connection = self._connect()
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("BEGIN IMMEDIATE")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                connection.execute("ROLLBACK")
                raise InputError(f"The workspace '{self.root}' was written by a newer Equiscope "
                                 f"(schema {version})", "Upgrade Equiscope, or use another workspace")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {number}")
            connection.execute("COMMIT")
        except sqlite3.OperationalError as error:
            raise _storage_error(error, self.root) from None
        except sqlite3.DatabaseError as error:
            raise InputError(f"'{self.db_path}' is not a readable Equiscope workspace ({error})",
                             "Choose another workspace folder") from None
        finally:
            connection.close()

    @property
    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    # -- studies ----------------------------------------------------------------------
    def create_study(self, name: str, dataset: str, dataset_sha256: str, spec: dict,
                     settings: dict | None = None) -> str:
        study_id = _new_id("study")
        with self._write() as db:
            db.execute(f"INSERT INTO studies ({_STUDY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (study_id, name, dataset, dataset_sha256, json.dumps(spec),
                        json.dumps(settings or {}), now_iso()))
        return study_id

    def find_or_create_study(self, name: str, dataset: str, dataset_sha256: str, spec: dict,
                             settings: dict | None = None) -> tuple[str, bool]:
        """The newest study of this exact table and spec, or a new one; (id, created).

        Check and insert happen in one transaction, so two processes opening the same
        workspace at once cannot both create the study.
        """
        spec_json = json.dumps(spec, sort_keys=True)
        with self._write() as db:
            for row in db.execute("SELECT id, spec_json FROM studies WHERE dataset_sha256 = ? "
                                  "ORDER BY created_at DESC, id", (dataset_sha256,)):
                if json.dumps(json.loads(row["spec_json"]), sort_keys=True) == spec_json:
                    return row["id"], False
            study_id = _new_id("study")
            db.execute(f"INSERT INTO studies ({_STUDY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (study_id, name, dataset, dataset_sha256, json.dumps(spec), json.dumps(settings or {}),
                        now_iso()))
        return study_id, True

    def get_study(self, study_id: str) -> StudyRecord:
        rows = self._read("SELECT * FROM studies WHERE id = ?", (study_id,))
        if not rows:
            raise InputError(f"No study '{study_id}' in workspace '{self.root}'", "List studies in the dashboard")
        return _study_record(rows[0])

    def set_study_framing(self, study_id: str, framing: dict) -> None:
        """Record the reviewer's framing of a study (replaces the previous one)."""
        self.get_study(study_id)
        with self._write() as db:
            db.execute("UPDATE studies SET framing_json = ? WHERE id = ?", (json.dumps(framing), study_id))

    def list_studies(self) -> list[StudyRecord]:
        """Every saved study, newest first."""
        return [_study_record(row) for row in self._read("SELECT * FROM studies ORDER BY created_at DESC, id")]

    # -- runs -------------------------------------------------------------------------
    def create_run(self, kind: str, name: str, config: dict, study_id: str | None = None, *,
                   actor: str | None = None) -> str:
        """Queue a run owned by `actor`, the reviewer whose session asks for it (None: the
        workspace's owner, e.g. the CLI); see core.workspace.auth for what the owner may do."""
        run_id = _new_id(kind)
        with self._write() as db:
            db.execute("INSERT INTO runs (id, study_id, kind, name, status, config_json, created_at, owner) "
                       "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                       (run_id, study_id, kind, name, json.dumps(config), now_iso(), actor))
        self.run_dir(run_id)
        return run_id

    def claim_next_run(self, pid: int | None = None) -> RunRecord | None:
        """Atomically take the oldest queued run and mark it running by this process."""
        with self._write() as db:
            row = db.execute("SELECT id FROM runs WHERE status = 'queued' AND cancel_requested = 0 "
                             "ORDER BY created_at, rowid LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE runs SET status = 'running', pid = ?, host = ?, started_at = ?, "
                       "heartbeat_at = ? WHERE id = ?",
                       (pid or os.getpid(), socket.gethostname(), now_iso(), time.time(), row["id"]))
        return self.get_run(row["id"])

    def start_run(self, run_id: str, pid: int | None = None) -> None:
        """Mark a run as running in this process (for runs executed in the foreground)."""
        with self._write() as db:
            db.execute("UPDATE runs SET status = 'running', pid = ?, host = ?, started_at = ?, "
                       "heartbeat_at = ? WHERE id = ?",
                       (pid or os.getpid(), socket.gethostname(), now_iso(), time.time(), run_id))

    def heartbeat(self, run_id: str, progress: dict | None = None) -> None:
        with self._write() as db:
            if progress is None:
                db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), run_id))
            else:
                db.execute("UPDATE runs SET heartbeat_at = ?, progress_json = ? WHERE id = ?",
                           (time.time(), json.dumps(progress), run_id))

    def add_event(self, run_id: str, event: dict) -> None:
        """Append a progress event (epoch, loss, ...) and make it the run's current progress."""
        with self._write() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id = ?",
                             (run_id,)).fetchone()[0]
            payload = json.dumps(event)
            db.execute("INSERT INTO run_events VALUES (?, ?, ?)", (run_id, seq, payload))
            db.execute("UPDATE runs SET progress_json = ?, heartbeat_at = ? WHERE id = ?",
                       (payload, time.time(), run_id))

    def events(self, run_id: str, after_seq: int = 0) -> list[dict]:
        rows = self._read("SELECT seq, event_json FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq",
                          (run_id, after_seq))
        return [{"seq": row["seq"], **json.loads(row["event_json"])} for row in rows]

    def finish_run(self, run_id: str, status: str, metrics: dict | None = None, error: str | None = None) -> None:
        if status not in FINAL_STATUSES:
            raise ValueError(f"not a final status: {status}")
        with self._write() as db:
            db.execute("UPDATE runs SET status = ?, metrics_json = COALESCE(?, metrics_json), error = ?, "
                       "finished_at = ?, heartbeat_at = ? WHERE id = ?",
                       (status, None if metrics is None else json.dumps(metrics), error, now_iso(),
                        time.time(), run_id))

    def request_cancel(self, run_id: str, *, actor: str | None) -> None:
        """Ask a run to stop: a queued run is cancelled at once, a running one at its next step.

        `actor` is who asks (None: the workspace's owner); no default, so that a caller cannot
        skip the check by forgetting it. InputError if they may not (another's run, shared edits
        off)."""
        check_may_change(self, self.get_run(run_id), actor, "cancel")
        with self._write() as db:
            db.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))
            db.execute("UPDATE runs SET status = 'cancelled', finished_at = ? WHERE id = ? AND status = 'queued'",
                       (now_iso(), run_id))

    def cancel_requested(self, run_id: str) -> bool:
        rows = self._read("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,))
        return bool(rows and rows[0]["cancel_requested"])

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise InputError(f"No run '{run_id}' in workspace '{self.root}'", "Check the run id")
        return _run_record(rows[0])

    def list_runs(self, study_id: str | None = None, status: str | None = None,
                  kind: str | None = None) -> list[RunRecord]:
        clauses, params = [], []
        for column, value in (("study_id", study_id), ("status", status), ("kind", kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(f"SELECT * FROM runs {where} ORDER BY created_at, rowid", tuple(params))
        return [_run_record(row) for row in rows]

    def run_dir(self, run_id: str) -> Path:
        path = self.root / "runs" / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def recover_interrupted(self) -> list[str]:
        """Mark runs left `running` by a dead process as `interrupted`; return their ids."""
        host = socket.gethostname()
        stale_before = time.time() - STALE_AFTER_S
        interrupted = []
        for run in self.list_runs(status="running"):
            dead = run["host"] == host and run["pid"] is not None and not pid_alive(run["pid"])
            stale = run["heartbeat_at"] is None or run["heartbeat_at"] < stale_before
            if dead or stale:
                interrupted.append(run["id"])
        if interrupted:
            with self._write() as db:
                for run_id in interrupted:
                    db.execute("UPDATE runs SET status = 'interrupted', finished_at = ?, error = COALESCE(error, ?) "
                               "WHERE id = ? AND status = 'running'",
                               (now_iso(), "The process running this job stopped before it finished.", run_id))
        return interrupted

    # -- notes ------------------------------------------------------------------------
    def add_note(self, study_id: str, body: str, author: str, status: str = "draft",
                 run_id: str | None = None) -> int:
        if status not in NOTE_STATUSES:
            raise InputError(f"Unknown review status '{status}'", f"Use one of: {', '.join(NOTE_STATUSES)}")
        if not body.strip() or not author.strip():
            raise InputError("A review note needs an author and some text", "Fill in both fields")
        with self._write() as db:
            cursor = db.execute("INSERT INTO notes (study_id, run_id, author, status, body, created_at) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                (study_id, run_id, author.strip(), status, body.strip(), now_iso()))
            return int(cursor.lastrowid)

    def list_notes(self, study_id: str, run_id: str | None = None) -> list[dict]:
        if run_id is None:
            rows = self._read("SELECT * FROM notes WHERE study_id = ? ORDER BY id", (study_id,))
        else:
            rows = self._read("SELECT * FROM notes WHERE study_id = ? AND run_id = ? ORDER BY id", (study_id, run_id))
        return [dict(row) for row in rows]

    # -- settings ---------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        rows = self._read("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0]["value"] if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self._write() as db:
            db.execute("INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       (key, value))


def _new_id(prefix: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:6]}"


def _study_record(row: sqlite3.Row) -> StudyRecord:
    data = dict(row)
    data["spec"] = json.loads(data.pop("spec_json"))
    data["settings"] = json.loads(data.pop("settings_json"))
    data["framing"] = json.loads(data.pop("framing_json", None) or "{}")
    return StudyRecord(**data)


def _run_record(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    for key in ("config", "metrics", "progress"):
        raw = data.pop(f"{key}_json")
        data[key] = json.loads(raw) if raw else None
    data["cancel_requested"] = bool(data["cancel_requested"])
    return RunRecord(**data)


LOW_DISK_BYTES = 1 << 20
"""Free space under which a storage failure is reported as a full disk."""


def _storage_error(error: sqlite3.OperationalError, root: Path) -> Exception:
    text = str(error).lower()
    if "full" in text or ("disk i/o error" in text and _free_bytes(root) < LOW_DISK_BYTES):
        return InputError(f"The disk holding the workspace '{root}' is full", "Free some space and try again")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return InputError(f"The workspace '{root}' cannot be written", "Check the folder's permissions")
    if "disk i/o error" in text:
        return InputError(f"The workspace '{root}' could not be written (disk I/O error)",
                          "Check the disk holding it, or choose another folder with --workspace")
    return error


def _free_bytes(path: Path) -> int:
    try:
        stat = os.statvfs(path)
    except OSError:
        return LOW_DISK_BYTES  # cannot tell: do not claim the disk is full
    return stat.f_bavail * stat.f_frsize
