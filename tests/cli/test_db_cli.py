"""``tagstream db``: one command migrates every owner of tables; ``current`` shows each."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tagstream.cli.main import app
from tests.shared.db.test_migrations import HEADS

OWNERS = ("registry", "ingest", "review", "feedback", "rollout")


def test_upgrade_migrates_every_owner_and_current_shows_each(database_url: str) -> None:
    env = {"TAGSTREAM_ENVIRONMENT": "test", "TAGSTREAM_DATABASE_URL": database_url}
    runner = CliRunner()

    before = runner.invoke(app, ["db", "current"], env=env)
    upgraded = runner.invoke(app, ["db", "upgrade"], env=env)
    after = runner.invoke(app, ["db", "current"], env=env)

    assert before.exit_code == 0, before.output
    assert before.stdout.splitlines() == [
        f"{owner}: empty (no migrations applied) (newest: {HEADS[owner]})" for owner in OWNERS
    ]
    assert upgraded.exit_code == 0, upgraded.output
    heads = [f"{owner}: {HEADS[owner]}" for owner in OWNERS]
    assert upgraded.stdout.splitlines() == heads
    assert after.stdout.splitlines() == heads


def test_a_registry_command_on_an_unmigrated_database_says_what_to_run(tmp_path: Path) -> None:
    env = {
        "TAGSTREAM_ENVIRONMENT": "test",
        "TAGSTREAM_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        "TAGSTREAM_REGISTRY_DIR": str(tmp_path / "registry"),
        "COLUMNS": "200",
    }

    listed = CliRunner().invoke(app, ["model", "list"], env=env)

    assert listed.exit_code == 1
    assert "not migrated: run `tagstream db upgrade`" in listed.stderr
