"""The accent colour is a calm blue, not Streamlit's default red (issue 17, item 10): a focused field's
outline and the selected preset read as errors in red. dashboard/.streamlit/config.toml sets it; the
server here starts from the repository root, as `equiscope serve` may start from any folder."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e
WAIT_MS = 60_000
CONFIG = Path(__file__).resolve().parents[2] / "dashboard" / ".streamlit" / "config.toml"


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


def _is_reddish(css: str) -> bool:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return r > 150 and r > 1.6 * max(g, b)


def test_focus_outlines_and_the_chosen_preset_are_not_red(page: Page, app_url: str):
    accent = _rgb(tomllib.loads(CONFIG.read_text())["theme"]["primaryColor"])
    assert not _is_reddish(accent)
    page.goto(f"{app_url}/train")
    chosen = page.get_by_role("button", name="Quick run", exact=True)
    expect(chosen).to_be_visible(timeout=WAIT_MS)
    assert chosen.evaluate("e => getComputedStyle(e).backgroundColor") == accent
    field = page.get_by_role("spinbutton", name="Pretraining epochs")
    field.click()
    page.wait_for_timeout(300)  # the outline's transition
    # The focus outline is drawn by the field's container (a few levels up, depending on the widget).
    borders = field.evaluate("""e => { const seen = []; for (let n = e, i = 0; n && i < 5; n = n.parentElement, i++) {
        const s = getComputedStyle(n); seen.push(s.borderTopColor, s.outlineColor); } return seen; }""")
    assert accent in borders, borders
    assert not any(_is_reddish(colour) for colour in borders), borders
