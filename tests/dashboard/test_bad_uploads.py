"""Bad files uploaded through the Data page, at scale: the page shows the loader's own
message in one st.error, raises nothing, and the workspace stays exactly as it was.

One browser session uploads file after file (as a reviewer trying several exports would):
random bytes, valid CSV / UTF-16 CSV / Parquet / Excel files cut at random points or with
bytes changed, and the named bad cases from tests/unit/test_fuzz_inputs.py. For each file the
expected message is what `read_table` raises for the same bytes. Hypothesis draws the files
(derandomized, `UPLOAD_EXAMPLES` of them), so the set is the same on every run.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from apphelpers import errors
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from core.data import read_table
from core.errors import InputError
from core.workspace.store import Workspace

UPLOAD_EXAMPLES = 25


def good_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 80, 60), "sex": rng.choice(["F", "M"], 60),
                          "approved": rng.choice(["yes", "no"], 60)})
    buffer_pq, buffer_xl = io.BytesIO(), io.BytesIO()
    frame.to_parquet(buffer_pq, index=False)
    frame.to_excel(buffer_xl, index=False)
    return {"loans.csv": frame.to_csv(index=False).encode(),
            "loans16.csv": frame.to_csv(index=False, sep=";").encode("utf-16"),
            "loans.parquet": buffer_pq.getvalue(), "loans.xlsx": buffer_xl.getvalue()}


GOOD = good_files()
NAMED_BAD = [
    ("header-only.csv", b"age,sex,approved\n"),
    ("one-column.csv", b"age:sex:approved\n30:F:yes\n"),
    ("bom-only.csv", b"\xef\xbb\xbf"),
    ("nul.csv", b"a,b\n1,\x002\n"),
    ("unclosed.csv", b'a,b\n"1,2\n'),
    ("fake.parquet", b"a,b\n1,2\n"),
    ("fake.xlsx", b"a,b\n1,2\n"),
    ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64),
    ("model.csv", b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94."),
    ("broken16.csv", b"\xff\xfe" + "a,b\n1,2\n".encode("utf-16-le")[:-1]),
]


def workspace_state(root: Path) -> dict:
    """Everything an upload could change: studies, runs, notes, stored files."""
    ws = Workspace(root, recover=False)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if p.is_file() and not p.name.startswith("equiscope.sqlite") and p.name != "worker.lock")
    notes = [ws.list_notes(study["id"]) for study in ws.list_studies()]
    return {"studies": ws.list_studies(), "runs": ws.list_runs(), "notes": notes, "files": files}


def expected_message(name: str, data: bytes) -> str | None:
    try:
        read_table(data, name)
    except InputError as error:
        return str(error)
    return None


def upload_and_check(app: AppTest, root: Path, before: dict, name: str, data: bytes) -> bool:
    """Upload one file; check the page and the workspace; True if the file was refused."""
    app.file_uploader(key="upload_file").set_value((name, data, "application/octet-stream")).run()
    assert not app.exception, app.exception
    message = expected_message(name, data)
    if message is not None:
        shown = errors(app)
        assert len(shown) == 1, shown
        assert shown[0] == message.replace("\\", ""), (shown[0], message)
        assert not app.get("plotly_chart") and not app.button and not app.dataframe
    assert workspace_state(root) == before
    return message is not None


@pytest.fixture
def session(make_app, workspace):
    app = make_app(data_source="upload")
    app.run()
    assert not app.exception
    return app, workspace, workspace_state(workspace)


def test_named_bad_files_show_the_loaders_message_and_change_nothing(session):
    app, root, before = session
    for name, data in NAMED_BAD:
        assert upload_and_check(app, root, before, name, data)
        assert "'" + name + "'" in errors(app)[0]
    assert before["studies"] == [] and before["runs"] == []


def test_fuzzed_files_uploaded_in_one_session_show_the_message_and_change_nothing(session):
    """One reviewer uploading many bad files in one session; hypothesis draws the files."""
    app, root, before = session
    seen = {"refused": 0, "loaded": 0}

    @settings(max_examples=UPLOAD_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(which=st.sampled_from(sorted(GOOD)), cut=st.floats(0.0, 0.98),
           flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), max_size=3),
           junk=st.none() | st.binary(min_size=1, max_size=400))
    @example(which="loans.csv", cut=0.0, flips=[], junk=b"\x00\x01\x02\x03" * 50)
    def one_upload(which, cut, flips, junk):
        if junk is not None:
            data = junk
        else:
            data = bytearray(GOOD[which][:max(1, int(len(GOOD[which]) * cut))])
            for where, value in flips:
                data[int(len(data) * where)] = value
        seen["refused" if upload_and_check(app, root, before, which, bytes(data)) else "loaded"] += 1

    one_upload()
    assert sum(seen.values()) >= UPLOAD_EXAMPLES
    assert seen["refused"] >= UPLOAD_EXAMPLES // 2, seen  # the generator must mostly make bad files
