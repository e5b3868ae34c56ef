"""The Train page's presets and expected times are honest (issue 17, item 10: "Quick" was not quicker
than "Full" while the page promised it): Quick never trains more than Full, its estimate is below
Full's at every table size and follows the measured tables, a small table's caption says most of a
quick run is the audit every preset pays, and the strategies read in plain words (no BatchNorm)."""

from __future__ import annotations

import pytest
from test_train_page import open_train, worker_calls  # noqa: F401 (the fixture the page needs)

from dashboard.components.train_views import ENCODER_SIZES, PRESET_SECONDS, PRESETS, preset_seconds


def test_quick_never_trains_more_than_full():
    quick, full = PRESETS["quick"], PRESETS["full"]
    for knob in ("train_epochs", "train_finetune_epochs", "train_replicates", "train_n_boot", "train_label_pct"):
        assert quick[knob] <= full[knob], knob
    assert set(quick["train_strategies"]) <= set(full["train_strategies"])
    assert ENCODER_SIZES[quick["train_size"]]["hidden_dim"] <= ENCODER_SIZES[full["train_size"]]["hidden_dim"]


@pytest.mark.parametrize("rows", [100, 1000, 3000, 5226, 6172, 20000, 45222, 200000])
def test_the_quick_estimate_is_below_the_full_one_at_every_size(rows):
    assert preset_seconds("quick", rows) < preset_seconds("full", rows)


def test_the_estimate_goes_through_the_measured_tables_and_between_them():
    for preset, points in PRESET_SECONDS.items():
        for rows, seconds in points:
            assert preset_seconds(preset, rows) == pytest.approx(seconds)
        (x0, y0), (x1, y1) = points[1], points[2]
        assert preset_seconds(preset, (x0 + x1) // 2) == pytest.approx((y0 + y1) / 2, rel=1e-3)
        assert preset_seconds(preset, 10) == points[0][1]  # fixed costs do not shrink with the table
        assert preset_seconds(preset, 2 * x1) > y1


def test_a_small_table_says_the_audit_dominates_and_strategies_read_plainly(make_app, worker_calls):  # noqa: F811
    app = open_train(make_app)
    caption = next(c.value for c in app.caption if c.value.startswith("Expected time"))
    assert "a full run: about 40 s" in caption and "most of a quick run is the audit itself" in caption
    strategies = app.multiselect(key="train_strategies")
    assert strategies.format_func("bn-stats") == "output layer and normalisation statistics"
    assert "bn-stats" in strategies.help  # the code name on hover
    shown = " ".join([c.value for c in app.caption] + [m.value for m in app.markdown])
    assert "BatchNorm" not in shown and "bn-affine:" not in shown
