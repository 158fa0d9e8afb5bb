from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import services.feedback.tables
import services.ingest.tables
import services.review.tables
import services.rollout.tables  # noqa: F401  (with the two above: every table on the metadata)
import shared.registry.tables  # noqa: F401  (puts the registry tables on the metadata)
from shared.db.base import Base
from shared.db.migrate import (
    alembic_config,
    current,
    head,
    schema_current,
    upgrade,
)
from shared.db.owners import SchemaOwner
from shared.db.session import make_engine
from tagstream.schema import FEEDBACK, INGEST, REGISTRY, REVIEW, ROLLOUT, SCHEMA_OWNERS, upgrade_all

REPO_ROOT = Path(__file__).resolve().parents[3]
TABLES = {
    "registry": {"model_versions", "model_artifacts", "model_status_changes", "model_traffic"},
    "ingest": {"ingest_items"},
    "review": {"review_accounts", "review_items", "review_skips", "review_labels", "review_outbox"},
    "feedback": {
        "feedback_labels",
        "feedback_gold",
        "feedback_predictions",
        "feedback_items",
        "feedback_conflicts",
        "retrain_runs",
        "feedback_report_requests",
    },
    "rollout": {"rollouts", "rollout_analyses"},
}
HEADS = {
    "registry": "registry_0003",
    "ingest": "ingest_0001",
    "review": "review_0004",
    "feedback": "feedback_0002",
    "rollout": "rollout_0001",
}
VERSION_TABLES = {f"alembic_version_{name}" for name in TABLES}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _revisions(url: str) -> dict[str, str | None]:
    return {owner.name: current(url, owner) for owner in SCHEMA_OWNERS}


def test_every_owner_is_listed_once_with_its_own_version_table() -> None:
    assert [owner.name for owner in SCHEMA_OWNERS] == list(TABLES)
    assert {owner.version_table for owner in SCHEMA_OWNERS} == VERSION_TABLES
    assert {owner.name: head(owner) for owner in SCHEMA_OWNERS} == HEADS
    # each owner's chain sits beside its tables, not in shared/db
    assert REGISTRY.versions_dir == REPO_ROOT / "shared" / "registry" / "migrations"
    for owner in (INGEST, REVIEW, FEEDBACK, ROLLOUT):
        assert owner.versions_dir == REPO_ROOT / "services" / owner.name / "migrations"


def test_upgrade_all_creates_every_owners_tables(database_url: str) -> None:
    assert _revisions(database_url) == dict.fromkeys(TABLES)

    upgrade_all(database_url)

    assert _revisions(database_url) == HEADS
    assert _tables(database_url) == set().union(*TABLES.values()) | VERSION_TABLES
    assert all(schema_current(database_url, owner) for owner in SCHEMA_OWNERS)


@pytest.mark.parametrize("owner", SCHEMA_OWNERS, ids=lambda owner: owner.name)
def test_an_owner_migrates_alone(database_url: str, owner: SchemaOwner) -> None:
    upgrade(database_url, owner)

    assert _tables(database_url) == TABLES[owner.name] | {owner.version_table}
    assert {o.name: schema_current(database_url, o) for o in SCHEMA_OWNERS} == {
        name: name == owner.name for name in TABLES
    }


def test_second_upgrade_is_a_no_op(database_url: str) -> None:
    upgrade_all(database_url)
    upgrade_all(database_url)

    assert _revisions(database_url) == HEADS


def test_migrations_match_the_table_metadata(database_url: str) -> None:
    upgrade_all(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    # the version tables are Alembic's, not the application's
                    "include_name": lambda name, type_, _parents: (
                        not (type_ == "table" and name.startswith("alembic_version"))
                    ),
                },
            )
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    assert diffs == []


def test_downgrade_removes_only_that_owners_tables(database_url: str) -> None:
    upgrade_all(database_url)
    command.downgrade(alembic_config(database_url, REVIEW), "base")

    assert _tables(database_url) == (set().union(*TABLES.values()) - TABLES["review"]) | (
        VERSION_TABLES
    )
    assert _revisions(database_url) == {**HEADS, "review": None}

    for owner in reversed(SCHEMA_OWNERS):
        command.downgrade(alembic_config(database_url, owner), "base")

    assert _tables(database_url) == VERSION_TABLES
    assert _revisions(database_url) == dict.fromkeys(TABLES)


def test_schema_current_is_false_below_the_head_and_for_an_unreachable_database(
    database_url: str,
) -> None:
    upgrade(database_url, REGISTRY, "registry_0001")

    assert current(database_url, REGISTRY) == "registry_0001"
    assert schema_current(database_url, REGISTRY) is False
    assert schema_current("postgresql://nobody@127.0.0.1:1/none", REGISTRY) is False


def test_concurrent_upgrades_in_threads_both_succeed(database_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            upgrade_all(database_url)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert _revisions(database_url) == HEADS


def upgrade_in_two_processes(database_url: str) -> list[tuple[int, str]]:
    """``tagstream db upgrade``'s work run by two processes at once: (exit code, output)."""
    code = "import sys; from tagstream.schema import upgrade_all; upgrade_all(sys.argv[1])"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    return [(process.returncode, out) for process, out in zip(processes, outputs, strict=True)]


def test_concurrent_upgrades_in_processes_both_succeed(database_url: str) -> None:
    runs = upgrade_in_two_processes(database_url)

    # The whole output, not pytest's shortened repr: a failure must show its traceback.
    assert [code for code, _ in runs] == [0, 0], "\n".join(out for _, out in runs)
    assert _revisions(database_url) == HEADS
