"""Nothing lost: real processes killed with SIGKILL, and full or read-only disks.

- A pretraining run in a child process is SIGKILLed in the middle of its second epoch
  (after its first checkpoint): the next start marks it interrupted, the checkpoint loads
  without pickle, and resuming ends with the bit-identical encoder of an uninterrupted run.
- A child hammering the workspace database is SIGKILLed at random moments, `KILLS` times:
  `PRAGMA integrity_check` stays ok and every run the child saw committed is readable.
- A child rewriting a file with `atomic_write` is SIGKILLed at random moments: the file is
  always one complete version, never a mix or a prefix.
- A full disk (a 1 MiB tmpfs where this process may mount one, else ENOSPC injected into
  the same calls) and a read-only workspace give InputError with a clear message, leave no
  half-written run, and `equiscope audit --out` leaves no partial folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pickle
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.workspace import jobs
from core.learning.checkpoint import load_training_state
from core.cli.main import main as cli_main
from core.errors import InputError
from core.learning.ssl.views import FeatureLayout
from core.files import atomic_write, remove_stale_temporaries
from core.workspace.store import Workspace
from core.learning.pretrain import PretrainConfig, pretrain

ROOT = Path(__file__).resolve().parents[2]
KILLS = 8
SEED = 20240611


def child(script: str, *args: str) -> subprocess.Popen:
    """A real Python process running `script` (with the repository importable)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(predicate, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"child exited early ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the child")
        time.sleep(0.02)


def kill(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL


# -- a pretraining job killed mid-epoch -------------------------------------------------------

PRETRAIN_CHILD = """
    import json, sys, time
    from pathlib import Path
    import numpy as np, torch
    torch.set_num_threads(1)
    from core.learning.ssl.views import FeatureLayout
    from core.workspace.store import Workspace
    from core.learning.pretrain import PretrainConfig, pretrain

    root, data_path, marker, config_json, steps_per_epoch = sys.argv[1:6]
    ws = Workspace(root, recover=False)
    run = ws.claim_next_run()
    arrays = np.load(data_path)
    calls = {"n": 0}

    def should_stop():  # called after every step; in the middle of epoch 2, say so and hang
        calls["n"] += 1
        if calls["n"] == int(steps_per_epoch) * 3 // 2:
            Path(marker).write_text(run["id"])
            time.sleep(600)
        return False

    pretrain(arrays["train"], arrays["val"], FeatureLayout.from_arrays(arrays["column"], arrays["numeric"]),
             PretrainConfig(**json.loads(config_json)), on_event=lambda event: ws.add_event(run["id"], event),
             should_stop=should_stop, checkpoint_dir=ws.run_dir(run["id"]) / "checkpoints")
    ws.finish_run(run["id"], "succeeded")
"""


def test_pretraining_killed_mid_epoch_is_interrupted_intact_and_resumes_bit_identically(
        synthetic_table, tmp_path, monkeypatch):
    t = synthetic_table
    train, val = t["X"][:640], t["X"][640:800]
    data_path = tmp_path / "data.npz"
    np.savez(data_path, train=train, val=val, column=t["column_of_feature"], numeric=t["is_numeric"])
    layout = FeatureLayout.from_arrays(t["column_of_feature"], t["is_numeric"])
    settings = dict(method="scarf", encoder={"hidden_dim": 32, "depth": 2, "embed_dim": 16}, epochs=3,
                    batch_size=64, seed=11, patience=0, device="cpu")
    steps_per_epoch = len(train) // 64

    ws = Workspace(tmp_path / "ws")
    run_id = ws.create_run("pretrain", "scarf on the synthetic table", settings)
    marker = tmp_path / "mid-epoch-2"
    process = child(PRETRAIN_CHILD, str(ws.root), str(data_path), str(marker), json.dumps(settings),
                    str(steps_per_epoch))
    try:
        wait_for(marker.exists, timeout=120, process=process)
        assert ws.get_run(run_id)["status"] == "running"
        kill(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    reopened = Workspace(ws.root)  # the next start
    run = reopened.get_run(run_id)
    assert run["status"] == "interrupted" and "stopped before it finished" in run["error"]
    assert [e["epoch"] for e in reopened.events(run_id) if e.get("message", "").endswith("done")] == [1]

    checkpoint = reopened.run_dir(run_id) / "checkpoints"
    assert sorted(p.name for p in checkpoint.iterdir()) == ["epoch_0001.safetensors", "state.json"]

    def no_pickle(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(torch, "load", no_pickle)
    tensors, meta = load_training_state(checkpoint)
    assert meta["epoch"] == 1 and meta["step"] == steps_per_epoch
    assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())

    config = PretrainConfig(**settings)
    resumed = pretrain(train, val, layout, config, checkpoint_dir=checkpoint, resume=True)
    full = pretrain(train, val, layout, config, checkpoint_dir=tmp_path / "uninterrupted")
    assert resumed.epochs_completed == full.epochs_completed == 3
    assert resumed.history == full.history
    reference = full.encoder.state_dict()
    for name, value in resumed.encoder.state_dict().items():
        assert torch.equal(value, reference[name]), name
    for name in ("state.json", "epoch_0003.safetensors"):
        assert (checkpoint / name).read_bytes() == (tmp_path / "uninterrupted" / name).read_bytes(), name


# -- the database killed during writes ------------------------------------------------------

HAMMER_CHILD = """
    import os, sys
    from core.workspace.store import Workspace
    root, log_path, name = sys.argv[1:4]
    ws = Workspace(root, recover=False)
    with open(log_path, "a") as log:
        for i in range(100000):
            run = ws.create_run("diagnostic", f"{name}-{i}", {"i": i, "padding": "x" * (i % 7) * 500})
            for step in range(3):
                ws.add_event(run, {"step": step, "loss": 1.0 / (step + 1)})
            ws.finish_run(run, "succeeded", metrics={"i": i})
            log.write(run + "\\n")  # only after the commit returned
            log.flush()
"""


def test_the_database_survives_sigkill_during_writes(tmp_path):
    ws = Workspace(tmp_path / "ws")
    log_path = tmp_path / "committed.txt"
    rng = random.Random(SEED)
    committed_before = 0
    for iteration in range(KILLS):
        process = child(HAMMER_CHILD, str(ws.root), str(log_path), f"k{iteration}")
        # wait until it is writing, then kill at a random moment
        wait_for(lambda: log_path.exists() and log_path.read_text().count("\n") > committed_before,
                 process=process)
        time.sleep(rng.uniform(0.0, 0.3))
        kill(process)

        connection = sqlite3.connect(ws.db_path)
        try:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            connection.close()
        committed = log_path.read_text().split()
        assert len(committed) > committed_before
        committed_before = len(committed)
        reopened = Workspace(ws.root)
        for run_id in committed:
            run = reopened.get_run(run_id)
            assert run["status"] == "succeeded" and run["metrics"]["i"] == run["config"]["i"]
            assert [e["step"] for e in reopened.events(run_id)] == [0, 1, 2]
        for run in reopened.list_runs():  # whatever the kill cut short is still a readable row
            assert run["status"] in ("queued", "succeeded") and isinstance(run["config"], dict)
    final = Workspace(ws.root)
    after = final.create_run("diagnostic", "after the kills", {})
    assert final.get_run(after)["status"] == "queued"
    print(f"{KILLS} kills, {committed_before} committed runs, all readable")


ATOMIC_CHILD = """
    import sys
    from core.files import atomic_write
    path, ready = sys.argv[1:3]
    open(ready, "w").close()
    version = 0
    while True:
        version += 1
        payload = (f"version {version}\\n".encode() + bytes([version % 251]) * (1 << 20))
        atomic_write(path, payload)
"""


def complete_version(data: bytes) -> int:
    """The version number of a complete file written by ATOMIC_CHILD; AssertionError otherwise."""
    header, _, body = data.partition(b"\n")
    version = int(header.split()[1])
    assert body == bytes([version % 251]) * (1 << 20), f"partial or mixed file (version {version})"
    return version


def test_atomic_write_killed_mid_write_leaves_the_old_or_the_new_file(tmp_path):
    target = tmp_path / "artifact.bin"
    atomic_write(target, b"version 0\n" + bytes([0]) * (1 << 20))
    rng = random.Random(SEED)
    versions = [0]
    for _ in range(KILLS):
        ready = tmp_path / "ready"
        ready.unlink(missing_ok=True)
        process = child(ATOMIC_CHILD, str(target), str(ready))
        wait_for(ready.exists, process=process)
        time.sleep(rng.uniform(0.05, 0.4))
        kill(process)
        versions.append(complete_version(target.read_bytes()))
    assert max(versions) > 0  # the children did replace the file
    with pytest.raises(AssertionError, match="partial"):  # and the check would catch a cut file
        complete_version(target.read_bytes()[:-1])
    left_behind = len(list(tmp_path.glob(".artifact.bin.*.tmp")))
    atomic_write(target, b"version 0\n" + bytes([0]) * (1 << 20))  # the next write sweeps them
    assert complete_version(target.read_bytes()) == 0
    assert not list(tmp_path.glob(".artifact.bin.*.tmp"))
    print(f"{KILLS} kills of atomic_write; versions seen {versions}; "
          f"{left_behind} temporary files left behind, none after the next write")


def test_stale_temporaries_of_dead_writers_only_are_removed(tmp_path):
    target = tmp_path / "report.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".report.json.{dead.pid}.abcd1234.tmp"
    alive = tmp_path / f".report.json.{os.getppid()}.efgh5678.tmp"  # a live process at work
    other_file = tmp_path / f".other.json.{dead.pid}.ijkl9012.tmp"
    odd_name = tmp_path / ".report.json.not-a-pid.tmp"
    for path in (stale, alive, other_file, odd_name):
        path.write_bytes(b"partial")
    assert remove_stale_temporaries(target) == [stale]
    assert not stale.exists() and alive.exists() and other_file.exists() and odd_name.exists()


# -- full and read-only disks -----------------------------------------------------------------

class SmallDisk:
    """A 1 MiB tmpfs mounted for the test, which can be filled or made read-only.

    Where this process may not mount (no CAP_SYS_ADMIN), the same failures are injected
    instead: fsync of files under the folder raises ENOSPC / EROFS, SQLite writes raise
    'database or disk is full' / 'attempt to write a readonly database', os.access says
    not writable. `mode` says which one ran; EQUISCOPE_SIMULATE_DISK=1 forces the injection.
    """

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        path.mkdir()
        self.mounted = os.environ.get("EQUISCOPE_SIMULATE_DISK") != "1" and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], capture_output=True).returncode == 0
        self.mode = "tmpfs" if self.mounted else "simulated"
        self.failure: int | None = None  # errno the simulated writes fail with
        if not self.mounted:
            self._simulate(monkeypatch)

    def fill(self) -> None:
        if self.mounted:
            with open(self.path / "filler", "wb", buffering=0) as handle, contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
            stat = os.statvfs(self.path)
            assert stat.f_bavail * stat.f_frsize < 8192
        self.failure = errno.ENOSPC

    def free(self) -> None:
        if (self.path / "filler").exists():
            (self.path / "filler").unlink()
        self.failure = None

    def make_read_only(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True)
        self.failure = errno.EROFS

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)

    def _inside(self, path: object) -> bool:
        return str(path).startswith(str(self.path))

    def _simulate(self, monkeypatch: pytest.MonkeyPatch) -> None:
        disk, real_fsync, real_connect, real_access = self, os.fsync, sqlite3.connect, os.access

        def fsync(fd):
            if disk.failure and disk._inside(os.readlink(f"/proc/self/fd/{fd}")):
                raise OSError(disk.failure, os.strerror(disk.failure))
            return real_fsync(fd)

        class FailingConnection(sqlite3.Connection):
            def execute(self, sql, *args):
                if disk.failure and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "CREATE", "PRAGMA USER")):
                    raise sqlite3.OperationalError("database or disk is full" if disk.failure == errno.ENOSPC
                                                   else "attempt to write a readonly database")
                return super().execute(sql, *args)

        def connect(path, *args, **kwargs):
            if disk._inside(path):
                kwargs["factory"] = FailingConnection
            return real_connect(path, *args, **kwargs)

        def access(path, mode, *args, **kwargs):
            if disk.failure == errno.EROFS and mode & os.W_OK and disk._inside(Path(path).resolve()):
                return False
            return real_access(path, mode, *args, **kwargs)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(sqlite3, "connect", connect)
        monkeypatch.setattr(os, "access", access)


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    disk = SmallDisk(tmp_path / "small", monkeypatch)
    yield disk
    disk.unmount()


def integrity_ok(db_path: Path) -> bool:
    connection = sqlite3.connect(db_path)
    try:
        return connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()


def test_a_full_disk_refuses_writes_with_a_clear_message_and_leaves_no_half_run(small_disk):
    ws = Workspace(small_disk.path / "ws")
    kept = ws.create_run("diagnostic", "before the disk filled up", {})
    small_disk.fill()
    with pytest.raises(InputError, match=r"The disk holding the workspace .* is full\. Free some space"):
        ws.create_run("diagnostic", "too big", {"payload": "x" * 200_000})
    with pytest.raises(InputError, match="is full"):
        ws.add_event(kept, {"message": "y" * 200_000})
    small_disk.free()
    assert [run["id"] for run in ws.list_runs()] == [kept] and ws.events(kept) == []
    assert sorted(p.name for p in (ws.root / "runs").iterdir()) == [kept]
    assert integrity_ok(ws.db_path)
    ws.create_run("diagnostic", "after freeing space", {})  # the workspace works again
    print(f"full disk: {small_disk.mode}")


def test_atomic_write_on_a_full_disk_keeps_the_old_file_and_no_temporary(small_disk):
    target = small_disk.path / "report.json"
    atomic_write(target, b"old")
    small_disk.fill()
    with pytest.raises(OSError) as raised:
        atomic_write(target, b"x" * 200_000)
    assert raised.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old"
    assert not list(small_disk.path.glob(".report.json.*"))


def people_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 200
    sex = rng.choice(["Female", "Male"], n)
    lines = ["age,sex,region,approved"]
    lines += [f"{a},{s},{r},{'yes' if p else 'no'}" for a, s, r, p in
              zip(rng.integers(18, 80, n), sex, rng.choice(["N", "S", "E"], n), rng.random(n) < 0.5)]
    path.write_text("\n".join(lines) + "\n")
    return path


AUDIT_ARGS = ["--target", "approved", "--sensitive", "sex", "--epochs", "1", "--finetune-epochs", "1",
              "--strategies", "linear", "--n-boot", "20", "--no-umap", "--replicates", "1"]


@pytest.mark.parametrize("problem", ["full", "read-only"])
def test_audit_to_a_full_or_read_only_disk_exits_2_with_one_line_and_no_partial_folder(
        small_disk, tmp_path, capsys, problem):
    data = people_csv(tmp_path / "people.csv")
    out = small_disk.path / "audit-out"
    small_disk.fill() if problem == "full" else small_disk.make_read_only()
    code = cli_main(["audit", "--data", str(data), *AUDIT_ARGS, "--workspace", str(tmp_path / "ws"),
                     "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    reason = "No space left on device" if problem == "full" else "Read-only file system"
    assert err[-1].startswith(f"error: Cannot write '{small_disk.path}/.audit-out.partial-") and reason in err[-1]
    assert not any("internal error" in line or "Traceback" in line for line in err), err
    assert [line for line in err if line.startswith("error")] == [err[-1]]  # the rest is the progress bar
    small_disk.free()
    assert not out.exists() and not [p for p in small_disk.path.iterdir() if p.name != "filler"]
    run = Workspace(tmp_path / "ws").list_runs()[0]
    assert run["status"] == "failed" and reason in run["error"]


def fill_disk_job(context) -> dict:
    """A job that writes a 4 MB artifact (more than the small disk holds)."""
    atomic_write(context.run_dir / "big.bin", b"x" * (4 << 20))
    return {}


def test_a_job_that_fills_the_disk_fails_with_a_clear_reason_not_a_stuck_run(small_disk, tmp_path, monkeypatch):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "runs").symlink_to(small_disk.path)  # artifacts on the small disk, the database not
    monkeypatch.setitem(jobs.JOB_KINDS, "fill-disk", f"{__name__}:fill_disk_job")
    ws = Workspace(root)
    run_id = jobs.submit(ws, "fill-disk", "writes too much", {}, start_worker=False)
    small_disk.fill()
    assert jobs.execute(ws, ws.claim_next_run()) == "failed"
    run = ws.get_run(run_id)
    assert run["status"] == "failed" and "No space left on device" in run["error"], run["error"]
    assert "Free some space" in run["error"]
    assert not list((ws.root / "runs" / run_id).glob("*.tmp"))


def test_a_read_only_workspace_is_refused_with_a_clear_message(small_disk):
    ws = Workspace(small_disk.path / "ws")
    run_id = ws.create_run("diagnostic", "written before", {})
    small_disk.make_read_only()
    with pytest.raises(InputError, match="is not writable. Fix its permissions or choose another folder"):
        Workspace(small_disk.path / "ws")
    with pytest.raises(InputError, match="cannot be written. Check the folder's permissions"):
        ws.create_run("diagnostic", "refused", {})
    try:  # SQLite cannot open a WAL database on a read-only disk once its -shm file is gone
        assert ws.get_run(run_id)["status"] == "queued"
    except InputError as error:
        assert "cannot be written" in str(error)
