"""The workspace store: schema, concurrent writers in real processes, atomic files, recovery."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from core.errors import InputError
from core.files import atomic_write
from core.workspace.store import MIGRATIONS, Workspace


def test_schema_is_versioned_and_wal(tmp_path):
    workspace = Workspace(tmp_path)
    assert workspace.schema_version == len(MIGRATIONS)
    mode = sqlite3.connect(workspace.db_path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    Workspace(tmp_path)  # reopening migrates nothing and keeps data
    assert Workspace(tmp_path).schema_version == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path):
    workspace = Workspace(tmp_path)
    sqlite3.connect(workspace.db_path).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(InputError, match="newer Equiscope"):
        Workspace(tmp_path)


def test_study_run_note_lifecycle(tmp_path):
    workspace = Workspace(tmp_path)
    study = workspace.create_study("Adult audit", "adult", "abc", {"target": "income"})
    run = workspace.create_run("diagnostic", "first", {"epochs": 2}, study_id=study)
    assert workspace.get_run(run)["status"] == "queued"
    claimed = workspace.claim_next_run()
    assert claimed["id"] == run and claimed["status"] == "running" and claimed["pid"] == os.getpid()
    workspace.add_event(run, {"epoch": 1, "loss": 0.5})
    workspace.add_event(run, {"epoch": 2, "loss": 0.4})
    assert [e["loss"] for e in workspace.events(run)] == [0.5, 0.4]
    assert workspace.get_run(run)["progress"] == {"epoch": 2, "loss": 0.4}
    workspace.finish_run(run, "succeeded", metrics={"accuracy": 0.8})
    assert workspace.get_run(run)["metrics"] == {"accuracy": 0.8}
    note = workspace.add_note(study, "Gap looks real", "Ana", "changes requested", run_id=run)
    assert workspace.list_notes(study)[0]["id"] == note
    with pytest.raises(InputError, match="review status"):
        workspace.add_note(study, "x", "Ana", "maybe")
    with pytest.raises(InputError, match="author and some text"):
        workspace.add_note(study, "  ", "Ana")


def test_cancel_of_a_queued_run_is_immediate(tmp_path):
    workspace = Workspace(tmp_path)
    run = workspace.create_run("diagnostic", "x", {})
    workspace.request_cancel(run, actor=None)
    assert workspace.get_run(run)["status"] == "cancelled"
    assert workspace.claim_next_run() is None


def _writer(root: str, name: str, count: int) -> None:
    workspace = Workspace(root, recover=False)
    for i in range(count):
        run = workspace.create_run("diagnostic", f"{name}-{i}", {"i": i})
        workspace.add_event(run, {"step": i})
        workspace.finish_run(run, "succeeded", metrics={"i": i})


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    Workspace(tmp_path)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_writer, args=(str(tmp_path), name, 60)) for name in ("a", "b")]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    runs = Workspace(tmp_path).list_runs()
    assert len(runs) == 120 and all(r["status"] == "succeeded" for r in runs)
    assert {r["name"] for r in runs} == {f"{n}-{i}" for n in "ab" for i in range(60)}
    assert sqlite3.connect(tmp_path / "equiscope.sqlite").execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_workers_never_claim_the_same_run(tmp_path):
    workspace = Workspace(tmp_path)
    ids = {workspace.create_run("diagnostic", str(i), {}) for i in range(40)}
    script = ("import sys, json; from core.workspace.store import Workspace\n"
              "w = Workspace(sys.argv[1], recover=False); got = []\n"
              "while (r := w.claim_next_run()) is not None: got.append(r['id'])\n"
              "print(json.dumps(got))")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    claimed = [__import__("json").loads(p.communicate(timeout=60)[0]) for p in procs]
    assert sorted(claimed[0] + claimed[1]) == sorted(ids)
    assert not set(claimed[0]) & set(claimed[1])


def test_a_run_left_running_by_a_killed_process_is_marked_interrupted(tmp_path):
    workspace = Workspace(tmp_path)
    run = workspace.create_run("diagnostic", "doomed", {})
    script = ("import sys, time; from core.workspace.store import Workspace\n"
              "w = Workspace(sys.argv[1], recover=False); w.claim_next_run(); print('claimed', flush=True)\n"
              "time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "claimed"
    assert Workspace(tmp_path).get_run(run)["status"] == "running"  # alive: left alone
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    reopened = Workspace(tmp_path)
    after = reopened.get_run(run)
    assert after["status"] == "interrupted" and "stopped before it finished" in after["error"]


def test_stale_heartbeat_is_interrupted_even_if_the_pid_looks_alive(tmp_path):
    workspace = Workspace(tmp_path)
    run = workspace.create_run("diagnostic", "remote", {})
    workspace.claim_next_run()
    with sqlite3.connect(workspace.db_path) as db:
        db.execute("UPDATE runs SET host = 'elsewhere', heartbeat_at = ? WHERE id = ?", (time.time() - 600, run))
    assert workspace.recover_interrupted() == [run]


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "deep" / "report.json"
    atomic_write(target, "{}")
    atomic_write(target, b'{"a": 1}')
    assert target.read_text() == '{"a": 1}'
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]  # no temp files left


def test_unwritable_workspace_is_a_clear_input_error(tmp_path):
    if os.geteuid() == 0:  # root ignores permissions; use a path under a file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(InputError, match="Cannot create the workspace"):
            Workspace(blocker / "ws")
    else:
        tmp_path.chmod(0o500)
        with pytest.raises(InputError):
            Workspace(tmp_path / "ws")


def test_find_or_create_study_is_atomic_across_processes(tmp_path):
    Workspace(tmp_path)
    script = ("import sys; from core.workspace.store import Workspace\n"
              "w = Workspace(sys.argv[1], recover=False)\n"
              "print(w.find_or_create_study('Adult', 'adult', 'sha', {'target': 'income', 'sensitive': ['sex']})[0])")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and len(Workspace(tmp_path).list_studies()) == 1
    other, created = Workspace(tmp_path).find_or_create_study("Adult", "adult", "sha", {"target": "other"})
    assert created and other not in ids
