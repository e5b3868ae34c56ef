"""Helpers for the AppTest suite: upload a file, read a plotly spec, make a small table."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest


def upload(app: AppTest, name: str, data: bytes, mime: str = "text/csv") -> AppTest:
    """Upload a file on the Data page (switching it to 'my own file' first) and rerun."""
    if app.session_state["data_source"] != "upload":
        app.radio(key="data_source").set_value("upload").run()
    return app.file_uploader(key="upload_file").upload(name, data, mime).run()


def figure(app: AppTest, attribute: str) -> dict:
    """The plotly spec of the group chart of `attribute`."""
    for chart in app.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["layout"].get("meta", {}).get("attribute") == attribute:
            return spec
    raise AssertionError(f"no group chart for {attribute!r}")


def values(array) -> list:
    """A plotly array as a list: plotly 7 writes numeric arrays as {'dtype', 'bdata': base64}."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
    return list(array)


def errors(app: AppTest) -> list[str]:
    """Error boxes' text, with the Markdown escapes removed."""
    return [error.value.replace("\\", "") for error in app.error]


def people_csv(n: int = 300, seed: int = 0, **overrides) -> bytes:
    """A small table a reviewer might upload: a yes/no target, sex, a few features, an e-mail."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], size=n, p=[0.4, 0.6])
    age = rng.integers(18, 80, size=n)
    score = np.round(rng.normal(600, 80, size=n), 1)
    region = rng.choice(["North", "South", "East", "West"], size=n)
    approved = np.where(rng.random(n) < np.where(sex == "Male", 0.55, 0.35), "yes", "no")
    frame = pd.DataFrame({"applicant": [f"a{i:04d}" for i in range(n)], "age": age, "sex": sex,
                          "region": region, "credit_score": score, "email": [f"p{i}@example.org" for i in range(n)],
                          "approved": approved})
    for column, value in overrides.items():
        frame[column] = value
    return frame.to_csv(index=False).encode()
