"""Access and privacy: the login, shared edits, upload names, safe CSV, personal data, no pickle.

- core/workspace/auth.py: salted scrypt hashes (salt differs, wrong passphrase rejected, constant-time
  check, no plaintext stored), OIDC detection, the mode `serve` picks, the shared-edits rule.
- `equiscope serve --host 0.0.0.0` refuses (exit 2, one line) without a login set up, and
  never passes the passphrase on.
- Hostile upload names never reach the file system; uploads are capped.
- Every CSV download in the code goes through `core.results.export.csv_bytes`, which neutralises
  every formula-like cell (property-based).
- A tiny real audit of a table with an e-mail and a name column: neither their values nor
  their names (outside the "withheld" statements) appear in any artifact or in hover data.
- No code unpickles anything; a pickle disguised as a model, encoder or checkpoint is
  refused with InputError and never executed.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import hmac
import io
import json
import os
import pickle
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.workspace import auth
from core.cli.main import main as cli_main
from core.errors import InputError
from core.results.export import FORMULA_START, csv_bytes
from core.workspace.store import Workspace
from core.workspace.uploads import MAX_NAME_CHARS, UPLOADS_DIR, safe_file_name, save_upload

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = [ROOT / "core", ROOT / "dashboard"]
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def python_files() -> list[Path]:
    return sorted(p for folder in CODE_DIRS for p in folder.rglob("*.py"))


# -- passphrase hashing ---------------------------------------------------------------------------

def test_passphrase_hash_is_salted_scrypt_and_checks_only_the_right_passphrase():
    first, second = auth.hash_passphrase("correct horse battery"), auth.hash_passphrase("correct horse battery")
    assert first["algorithm"] == "scrypt" and len(bytes.fromhex(first["salt"])) == 16
    assert first["salt"] != second["salt"] and first["hash"] != second["hash"]  # salt differs, so do hashes
    expected = hashlib.scrypt(b"correct horse battery", salt=bytes.fromhex(first["salt"]), n=first["n"],
                              r=first["r"], p=first["p"], dklen=32)
    assert first["hash"] == expected.hex()
    assert auth.check_passphrase("correct horse battery", first)
    assert auth.check_passphrase("correct horse battery", second)
    for wrong in ["correct horse batterY", "correct horse battery ", "", "x" * 1000]:
        assert not auth.check_passphrase(wrong, first)
    assert not auth.check_passphrase("correct horse battery", {**first, "hash": "00" * 32})
    assert not auth.check_passphrase("correct horse battery", {**first, "algorithm": "md5"})
    assert not auth.check_passphrase("correct horse battery", {"algorithm": "scrypt"})


def test_the_check_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    record = auth.hash_passphrase("a long passphrase")
    assert auth.check_passphrase("a long passphrase", record) and not auth.check_passphrase("nope", record)
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)


def test_the_workspace_keeps_only_the_hash(tmp_path):
    ws = Workspace(tmp_path)
    assert not auth.has_passphrase(ws) and not auth.verify_passphrase(ws, "anything at all")
    auth.set_passphrase(ws, "review meeting 2024")
    stored = ws.get_setting(auth.PASSPHRASE_KEY)
    assert "review meeting" not in stored and "2024" not in stored
    assert b"review meeting 2024" not in ws.db_path.read_bytes()
    assert auth.verify_passphrase(ws, "review meeting 2024")
    assert not auth.verify_passphrase(ws, "review meeting 2025")
    with pytest.raises(InputError, match="too short"):
        auth.set_passphrase(ws, "short")
    ws.set_setting(auth.PASSPHRASE_KEY, "not json")
    assert not auth.verify_passphrase(ws, "review meeting 2024")


# -- modes and the serve command --------------------------------------------------------------------

OIDC_SECRETS = """
[auth]
redirect_uri = "http://review.example.org:8501/oauth2callback"
cookie_secret = "a-random-secret"
client_id = "equiscope"
client_secret = "xyz"
server_metadata_url = "https://login.example.org/.well-known/openid-configuration"
"""


def test_oidc_is_detected_from_an_auth_section(tmp_path):
    path = tmp_path / "secrets.toml"
    assert auth.oidc_configured([path]) is None
    path.write_text(OIDC_SECRETS)
    assert auth.oidc_configured([path]) == path
    path.write_text('[auth]\nredirect_uri = "x"\ncookie_secret = "y"\n[auth.google]\nclient_id = "z"\n')
    assert auth.oidc_configured([path]) == path
    path.write_text('[auth]\ncookie_secret = "y"\n')  # no provider: not configured
    assert auth.oidc_configured([path]) is None
    path.write_text("[auth\nbroken")
    assert auth.oidc_configured([path]) is None


@pytest.fixture
def serve_env(tmp_path, monkeypatch):
    """`equiscope serve` with no secrets anywhere and Streamlit replaced by a recorder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(auth.PASSPHRASE_ENV, raising=False)
    started = []
    monkeypatch.setattr("core.cli.serve.run_until_stopped", lambda command, env: started.append((command, env)) or 0)
    return tmp_path / "ws", started


def serve(*args: str) -> int:
    return cli_main(["serve", "--port", "8765", *args])


def test_serving_on_the_network_without_a_login_refuses_with_one_line(serve_env, capsys):
    ws, started = serve_env
    assert serve("--host", "0.0.0.0", "--workspace", str(ws)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: Serving on 0.0.0.0")
    assert "equiscope serve --host 0.0.0.0 --set-passphrase" in err[0] and "EQUISCOPE_PASSPHRASE" in err[0]
    assert started == []


def test_loopback_needs_no_login_and_binds_127_0_0_1_by_default(serve_env):
    ws, started = serve_env
    assert serve("--workspace", str(ws)) == 0
    command, env = started[0]
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert env[auth.AUTH_ENV] == "none"
    assert command[command.index("--server.maxUploadSize") + 1] == "500"  # Parquet's limit, the largest


def test_a_passphrase_from_the_environment_is_hashed_and_not_passed_on(serve_env, monkeypatch, capsys):
    ws, started = serve_env
    monkeypatch.setenv(auth.PASSPHRASE_ENV, "the shared secret phrase")
    assert serve("--host", "0.0.0.0", "--workspace", str(ws)) == 0
    command, env = started[0]
    assert env[auth.AUTH_ENV] == "passphrase" and auth.PASSPHRASE_ENV not in env
    assert auth.PASSPHRASE_ENV not in os.environ
    assert "the shared secret phrase" not in " ".join(command) + capsys.readouterr().err
    assert auth.verify_passphrase(Workspace(ws), "the shared secret phrase")
    assert serve("--host", "0.0.0.0", "--workspace", str(ws)) == 0  # the stored hash is enough next time
    assert started[1][1][auth.AUTH_ENV] == "passphrase"


def test_set_passphrase_prompts_twice(serve_env, monkeypatch):
    ws, started = serve_env
    answers = iter(["typed twice correctly", "typed twice correctly", "one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert serve("--host", "0.0.0.0", "--workspace", str(ws), "--set-passphrase") == 0
    assert auth.verify_passphrase(Workspace(ws), "typed twice correctly")
    assert serve("--host", "0.0.0.0", "--workspace", str(ws), "--set-passphrase") == 2  # they differ


def test_oidc_secrets_select_streamlit_login_which_needs_authlib(serve_env, monkeypatch, capsys):
    ws, started = serve_env
    (Path.cwd() / ".streamlit").mkdir()
    (Path.cwd() / ".streamlit" / "secrets.toml").write_text(OIDC_SECRETS)
    monkeypatch.setattr(auth, "authlib_installed", lambda: False)
    assert serve("--host", "0.0.0.0", "--workspace", str(ws)) == 2
    assert 'pip install "streamlit[auth]"' in capsys.readouterr().err
    monkeypatch.setattr(auth, "authlib_installed", lambda: True)
    assert serve("--host", "0.0.0.0", "--workspace", str(ws)) == 0
    assert started[-1][1][auth.AUTH_ENV] == "oidc"


# -- shared edits -----------------------------------------------------------------------------------

def test_a_run_can_be_cancelled_only_by_its_owner_unless_shared_edits_are_on(tmp_path):
    ws = Workspace(tmp_path)
    run = ws.create_run("diagnostic", "Ana's run", {}, actor="Ana")
    assert ws.get_run(run)["owner"] == "Ana"
    assert not auth.may_change(ws, ws.get_run(run), "Bo")
    with pytest.raises(InputError, match="started by Ana; only they can cancel it"):
        ws.request_cancel(run, actor="Bo")
    assert ws.get_run(run)["status"] == "queued" and not ws.get_run(run)["cancel_requested"]
    ws.set_setting(auth.SHARED_EDITS_KEY, "on")
    ws.request_cancel(run, actor="Bo")
    assert ws.get_run(run)["status"] == "cancelled"

    ws.set_setting(auth.SHARED_EDITS_KEY, "off")
    own = ws.create_run("diagnostic", "Ana's second run", {}, actor="Ana")
    ws.request_cancel(own, actor="Ana")  # the owner may
    other = ws.create_run("diagnostic", "from the CLI", {})
    assert ws.get_run(other)["owner"] is None
    ws.request_cancel(other, actor="Bo")  # runs without an owner (CLI) are the workspace's: anyone may
    bos = ws.create_run("diagnostic", "queued by Ana", {}, actor="Ana")
    ws.request_cancel(bos, actor=None)  # the CLI and the worker act as the workspace's owner


def test_who_acts_is_passed_not_kept_in_core():
    """No process-wide "current reviewer": one server process serves every reviewer's session."""
    assert not [name for name in vars(auth) if "actor" in name.lower()]
    with pytest.raises(TypeError):
        Workspace.request_cancel(None, "run-id")  # who asks must be said, even when it is the owner (None)


def test_review_notes_are_append_only_for_everyone(tmp_path):
    ws = Workspace(tmp_path)
    study = ws.create_study("s", "adult", "abc", {})
    ws.add_note(study, "first", "Ana")
    ws.add_note(study, "second", "Bo", "approved")
    assert [n["body"] for n in ws.list_notes(study)] == ["first", "second"]
    writers = [name for name in dir(Workspace) if "note" in name]
    assert sorted(writers) == ["add_note", "list_notes"]  # no way to edit or delete a note


# -- upload names and size --------------------------------------------------------------------------

HOSTILE_NAMES = ["../../etc/passwd", "/etc/shadow", "C:\\Windows\\System32\\drivers\\etc\\hosts",
                 "..\\..\\boot.ini", "data.csv\x00.exe", "\x00", "x" * 5000 + ".csv", "CON", "con.csv", "NUL.txt",
                 "COM1.csv", "LPT9", "aux.parquet", "file\u202egnp.exe", "ｆｕｌｌ／..／wide.csv", "．．／．．／passwd",
                 "..／..／x.csv", "~/.ssh/id_rsa", "$(rm -rf ~).csv", "; rm -rf / ;.csv", "\n\r.csv", ".", "..",
                 "...", " ", ".bashrc", "%2e%2e%2fetc%2fpasswd", "data.csv/", "a/b/c/../../../../x.csv",
                 "\\\\server\\share\\x.csv", "ß" * 200, "🙂.csv", "\u0000\u0001\u001f.csv"]
SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def check_stored(root: Path, path: Path, data: bytes) -> None:
    folder = (root / UPLOADS_DIR).resolve()
    assert path.parent == folder and path.resolve().parent == folder
    assert re.fullmatch(r"[0-9a-f]{16}-[A-Za-z0-9._-]+", path.name) and len(path.name) <= 17 + MAX_NAME_CHARS
    assert path.name.split(".")[0].lower() not in WINDOWS_RESERVED
    assert path.read_bytes() == data
    assert sorted(p for p in root.rglob("*") if p.is_file()) == sorted(folder.iterdir())


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_upload_names_stay_inside_the_uploads_folder(tmp_path, name):
    root = tmp_path / "ws"
    data = b"a,b\n1,2\n"
    path = save_upload(root, data, name)
    check_stored(root, path, data)
    safe = safe_file_name(name)
    assert SAFE.fullmatch(safe) and ".." not in safe.split(".")[0:1] and len(safe) <= MAX_NAME_CHARS


@PROPERTY
@given(name=st.text(max_size=300))
def test_any_upload_name_is_sanitised(tmp_path_factory, name):
    root = tmp_path_factory.mktemp("uploads")
    data = name.encode("utf-8", "surrogatepass") + b"\n1,2\n"
    path = save_upload(root, data, name)
    check_stored(root, path, data)
    assert "/" not in safe_file_name(name) and "\\" not in safe_file_name(name)
    assert unicodedata.is_normalized("NFKC", safe_file_name(name))


def test_uploads_are_capped_before_anything_is_written(tmp_path):
    from core.data.loading import MAX_UPLOAD_BYTES

    assert MAX_UPLOAD_BYTES == 200 * 2**20
    with pytest.raises(InputError, match="the limit is 1.0 MB"):
        save_upload(tmp_path, b"x" * (2**20 + 1), "../big.csv", max_bytes=2**20)
    assert not (tmp_path / UPLOADS_DIR).exists()
    from core.data import read_table

    with pytest.raises(InputError, match="the limit is"):
        read_table(b"a,b\n" + b"1,2\n" * 1000, "big.csv", max_bytes=1000)


# -- CSV exports ------------------------------------------------------------------------------------

def csv_download_problems(source: str, filename: str) -> list[str]:
    """Every `.to_csv(` outside core/results/export.py, and every CSV download whose data is not
    `csv_bytes(...)`, in one Python source."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr == "to_csv" and not filename.endswith("core/results/export.py"):
            problems.append(f"{filename}:{node.lineno}: to_csv outside core.results.export")
        if node.func.attr == "download_button":
            words = ast.unparse(node)
            data = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "data"),
                                                                None)
            is_csv = "csv" in words.lower()
            if isinstance(data, ast.Lambda):  # deferred: made when the reviewer clicks
                data = data.body
            safe = isinstance(data, ast.Call) and getattr(data.func, "id", getattr(data.func, "attr", "")) == "csv_bytes"
            if is_csv and not safe:
                problems.append(f"{filename}:{node.lineno}: CSV download not made by csv_bytes")
    return problems


def test_every_csv_export_goes_through_csv_bytes():
    problems, downloads = [], 0
    for path in python_files():
        source = path.read_text(encoding="utf-8")
        downloads += source.count("csv_bytes(")
        problems += csv_download_problems(source, path.relative_to(ROOT).as_posix())
    assert problems == []
    assert downloads >= 5  # the Data page's three downloads and the result pages' (a scan that finds nothing proves nothing)
    assert csv_download_problems('st.download_button("x", frame.to_csv(), file_name="a.csv")', "dashboard/x.py")
    assert csv_download_problems('st.download_button("x", lambda: frame.to_csv(), file_name="a.csv")', "dashboard/x.py")
    assert not csv_download_problems('st.download_button("x", lambda: csv_bytes(f), file_name="a.csv")', "dashboard/x.py")


CELLS = st.one_of(st.text(max_size=20), st.sampled_from(["=1+1", "+1", "-1", "@SUM(A1)", "\t=x", "\r=x", "=", "-",
                                                         " =1", "'=1"]),
                  st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False))


@PROPERTY
@given(rows=st.lists(st.lists(CELLS, min_size=2, max_size=2), min_size=1, max_size=8),
       names=st.lists(st.text(max_size=8), min_size=2, max_size=2, unique=True))
@example(rows=[["x\r=1+1", 1]], names=["group", "n"])  # was written unquoted: the "\r" started a row "=1+1"
@example(rows=[["0", ""]], names=["\r", ""])
def test_no_exported_text_cell_starts_like_a_formula(rows, names):
    frame = pd.DataFrame(rows, columns=names)
    parsed = list(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8"), newline="")))
    assert len(parsed) == len(frame) + 1 and all(len(row) == 2 for row in parsed), parsed  # no row injected
    header, body = parsed[0], parsed[1:]
    for position, name in enumerate(header):
        assert not name.startswith(FORMULA_START), name
        original = frame.iloc[:, position]
        for row, value in zip(body, original):
            text = row[position]
            if isinstance(value, str):
                assert not text.startswith(FORMULA_START), text
                assert text in (value, "'" + value)
            elif pd.api.types.is_numeric_dtype(original):
                assert float(text) == float(value)  # numbers stay exact, negatives stay numbers


# -- personal data ----------------------------------------------------------------------------------

def people_with_pii(path: Path, n: int = 240) -> tuple[Path, list[str]]:
    rng = np.random.default_rng(3)
    first = ["Ana", "Bo", "Carl", "Dita", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jana", "Kofi", "Lena"]
    last = ["Silva", "Chen", "Meyer", "Novak", "Okafor", "Petrov", "Quist", "Rossi", "Sato", "Tanaka", "Ulm"]
    names = [f"{first[i % 12]} {last[(i // 12 + i) % 11]}" for i in range(n)]
    emails = [f"applicant{i:04d}@mailbox.example" for i in range(n)]
    sex = rng.choice(["Female", "Male"], n)
    frame = pd.DataFrame({"full_name": names, "email": emails, "age": rng.integers(18, 80, n), "sex": sex,
                          "region": rng.choice(["North", "South", "East"], n), "score": rng.normal(600, 80, n).round(1),
                          "approved": np.where(rng.random(n) < np.where(sex == "Male", 0.6, 0.4), "yes", "no")})
    frame.to_csv(path, index=False)
    return path, names + emails


@pytest.fixture(scope="module")
def pii_audit(tmp_path_factory):
    from core.run.pipeline import AuditConfig, run_audit

    folder = tmp_path_factory.mktemp("pii-audit")
    data, values = people_with_pii(folder / "people.csv")
    out = folder / "out"
    config = AuditConfig(data=str(data), target="approved", sensitive=["sex"], epochs=1, finetune_epochs=1,
                         n_boot=20, strategies=["linear"], umap=False, seed=0, replicates=1)
    report = run_audit(config, out)
    return out, report, values


PII_COLUMNS = ["full_name", "email"]


def test_the_report_lists_the_withheld_personal_data_columns(pii_audit):
    out, report, _ = pii_audit
    assert report["withheld_columns"] == PII_COLUMNS
    assert json.loads((out / "report.json").read_text())["withheld_columns"] == PII_COLUMNS
    assert not set(PII_COLUMNS) & set(report["study"]["features"])


def artifact_texts(out: Path) -> dict[str, str]:
    """Every artifact as text: JSON/HTML as written, Parquet cells and column names as read."""
    texts = {}
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(out).as_posix()
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            texts[relative] = " ".join(map(str, frame.columns)) + "\n" + frame.to_csv(index=False)
        elif path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as handle:
                texts[relative] = " ".join(handle.keys()) + json.dumps(handle.metadata() or {})
        else:
            texts[relative] = path.read_text(encoding="utf-8", errors="replace")
    return texts


def test_personal_data_values_appear_in_no_artifact(pii_audit):
    out, _, values = pii_audit
    texts = artifact_texts(out)
    assert {"report.json", "predictions.parquet", "study.json", "validation_predictions.parquet"} <= set(texts)
    assert "report.html" in texts  # core/results/report.py has landed
    for relative, text in texts.items():
        leaked = [value for value in values if value in text]
        assert not leaked, f"{relative} holds personal data: {leaked[:3]}"


def test_personal_data_column_names_appear_only_where_the_withholding_is_stated(pii_audit):
    out, _, _ = pii_audit
    for relative, text in artifact_texts(out).items():
        for column in PII_COLUMNS:
            for match in re.finditer(re.escape(column), text):
                around = text[max(0, match.start() - 200):match.end() + 120].lower()
                stated = "withheld" in around or "personal data" in around
                assert stated, f"{relative} names '{column}' outside a withholding statement: {around!r}"
    frame = pd.read_parquet(out / "predictions.parquet")
    assert not set(PII_COLUMNS) & set(frame.columns)
    assert list(frame.columns[:2]) == ["row_id", "sex"]


def test_hover_data_of_the_embedding_map_holds_no_personal_data(pii_audit):
    from core.results.tables import embedding_points
    from core.results.folder import load_results

    out, report, values = pii_audit
    predictions = pd.read_parquet(out / "predictions.parquet")
    rng = np.random.default_rng(0)
    fake_map = pd.concat([pd.DataFrame({"row_id": predictions["row_id"], "model": model["name"],
                                        "umap_x": rng.normal(size=len(predictions)).astype(np.float32),
                                        "umap_y": rng.normal(size=len(predictions)).astype(np.float32)})
                          for model in report["models"]])
    results = load_results(out)
    results = type(results)(**{**results.__dict__, "embeddings": fake_map})
    for model in results.models:
        points = embedding_points(results, model)
        assert not set(PII_COLUMNS) & set(points.columns)
        assert set(points.columns) <= {"row_id", "umap_x", "umap_y", "sex", "label", "prediction", "score", "error"}
        text = points.to_csv(index=False)
        assert not [value for value in values if value in text]


# -- never unpickle ---------------------------------------------------------------------------------

UNPICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def unpickling_calls(source: str, filename: str) -> list[str]:
    """Calls that can execute a pickle: pickle-like modules, torch.load without
    weights_only=True, pandas read_pickle, numpy load with allow_pickle=True."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name.split(".")[0] for a in node.names] if isinstance(node, ast.Import) else \
                [(node.module or "").split(".")[0]]
            found += [f"{filename}:{node.lineno}: imports {m}" for m in modules if m in UNPICKLING_MODULES]
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keywords = {k.arg: k.value for k in node.keywords}
        if name.endswith("read_pickle") or name.split(".")[0] in UNPICKLING_MODULES:
            found.append(f"{filename}:{node.lineno}: {name}")
        elif name in ("torch.load", "load") and name == "torch.load":
            weights_only = keywords.get("weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(f"{filename}:{node.lineno}: torch.load without weights_only=True")
        elif name in ("np.load", "numpy.load"):
            allow = keywords.get("allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append(f"{filename}:{node.lineno}: {name} with allow_pickle")
    return found


def test_no_code_can_unpickle():
    found = []
    for path in python_files():
        found += unpickling_calls(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    assert found == []
    bad = ("import pickle\nimport torch, numpy as np, pandas as pd\npickle.loads(b'')\ntorch.load('m.pt')\n"
           "torch.load('m.pt', weights_only=False)\nnp.load('a.npy', allow_pickle=True)\npd.read_pickle('f')\n"
           "from joblib import load\n")
    assert len(unpickling_calls(bad, "bad.py")) == 7  # the scan does catch each form
    assert unpickling_calls("import torch\ntorch.load('m.pt', weights_only=True)\n", "ok.py") == []


class _Payload:
    """Unpickling this makes a folder: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def malicious(tmp_path) -> tuple[bytes, bytes, Path]:
    marker = tmp_path / "PWNED"
    plain = pickle.dumps(_Payload(marker))
    buffer = io.BytesIO()
    torch.save({"weights": _Payload(marker)}, buffer)  # torch's zip format, pickle inside
    return plain, buffer.getvalue(), marker


def test_a_pickle_disguised_as_an_encoder_model_or_checkpoint_is_refused_not_run(tmp_path, malicious):
    from core.learning.checkpoint import load_encoder, load_training_state, save_encoder
    from core.learning.finetune.classifier import META_FILE, WEIGHTS_FILE, TrainedClassifier
    from core.learning.models import Encoder, EncoderConfig

    plain, torch_zip, marker = malicious
    encoder_dir = save_encoder(tmp_path / "encoder", Encoder(EncoderConfig(input_dim=4, hidden_dim=8, depth=1,
                                                                            embed_dim=4)))
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / META_FILE).write_text(json.dumps({
        "format_version": 1, "name": "evil", "pretraining": None, "strategy": "linear", "n_trainable_params": 1,
        "temperature": 1.0, "encoder_config": EncoderConfig(input_dim=4, hidden_dim=8, depth=1,
                                                            embed_dim=4).to_dict()}))
    checkpoint_dir = tmp_path / "checkpoint"
    checkpoint_dir.mkdir()
    (checkpoint_dir / "state.json").write_text(json.dumps({"format": "equiscope-pretrain-checkpoint/1",
                                                           "tensors": "epoch_0001.safetensors", "epoch": 1}))
    refused = 0
    for payload in (plain, torch_zip):
        (encoder_dir / "encoder.safetensors").write_bytes(payload)
        (model_dir / WEIGHTS_FILE).write_bytes(payload)
        (checkpoint_dir / "epoch_0001.safetensors").write_bytes(payload)
        for load in (lambda: load_encoder(encoder_dir), lambda: TrainedClassifier.load(model_dir),
                     lambda: load_training_state(checkpoint_dir)):
            with pytest.raises(InputError, match="is not a readable safetensors file"):
                load()
            refused += 1
    assert refused == 6 and not marker.exists()


def test_a_pickle_uploaded_as_a_table_is_refused_not_run(malicious):
    from core.data import read_table

    plain, torch_zip, marker = malicious
    for name in ("table.csv", "table.parquet", "table.xlsx", "table"):
        for payload in (plain, torch_zip):
            with pytest.raises(InputError):
                read_table(payload, name)
    assert not marker.exists()
