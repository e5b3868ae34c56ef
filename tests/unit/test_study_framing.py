"""The reviewer's framing of a study (issue 17): kept with the study, upgraded into old workspaces,
and carried to the audit's config and the CLI."""

from __future__ import annotations

import sqlite3

from core.cli.main import build_parser
from core.run.config import AuditConfig
from core.workspace.store import MIGRATIONS, Workspace


def test_a_study_keeps_the_reviewers_framing(tmp_path):
    ws = Workspace(tmp_path / "ws")
    study_id = ws.create_study("Arrests 2024", "arrests.csv", "ab" * 32, {"target": "released"})
    assert ws.get_study(study_id)["framing"] == {}
    ws.set_study_framing(study_id, {"outcome_effect": "helps", "costlier_error": "denied"})
    assert ws.get_study(study_id)["framing"] == {"outcome_effect": "helps", "costlier_error": "denied"}
    assert ws.list_studies()[0]["framing"]["outcome_effect"] == "helps"


def test_a_workspace_made_before_the_framing_is_upgraded_and_keeps_its_studies(tmp_path):
    root = tmp_path / "old"
    root.mkdir()
    connection = sqlite3.connect(root / "equiscope.sqlite")
    for script in MIGRATIONS[:2]:
        for statement in filter(str.strip, script.split(";")):
            connection.execute(statement)
    connection.execute("PRAGMA user_version = 2")
    connection.execute("INSERT INTO studies VALUES ('s1', 'Old', 'german', 'cd', '{}', '{}', '2026-01-01')")
    connection.commit()
    connection.close()
    ws = Workspace(root)
    assert ws.schema_version == len(MIGRATIONS)
    assert ws.get_study("s1")["framing"] == {}
    ws.set_study_framing("s1", {"outcome_effect": "harms"})
    assert ws.get_study("s1")["framing"]["outcome_effect"] == "harms"


def test_the_audit_config_and_the_cli_carry_the_outcome_effect():
    config = AuditConfig(data="german", target="credit", sensitive=["sex"], outcome_effect="harms")
    assert config.to_dict()["outcome_effect"] == "harms"
    assert AuditConfig.from_dict(config.to_dict()).outcome_effect == "harms"
    args = build_parser().parse_args(["audit", "--data", "german", "--target", "credit", "--sensitive", "sex",
                                      "--out", "x", "--outcome-effect", "helps"])
    assert args.outcome_effect == "helps"
