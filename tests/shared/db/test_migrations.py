from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

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
from shared.db.migrate import alembic_config, current, upgrade
from shared.db.session import make_engine

REPO_ROOT = Path(__file__).resolve().parents[3]
REGISTRY_TABLES = {"model_versions", "model_artifacts", "model_status_changes", "model_traffic"}
INGEST_TABLES = {"ingest_items"}
REVIEW_TABLES = {
    "review_accounts",
    "review_items",
    "review_skips",
    "review_labels",
    "review_outbox",
}
ROLLOUT_TABLES = {"rollouts", "rollout_analyses"}
FEEDBACK_TABLES = {
    "feedback_labels",
    "feedback_gold",
    "feedback_predictions",
    "feedback_items",
    "feedback_conflicts",
    "retrain_runs",
}
HEAD = "0006"


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_the_tables(database_url: str) -> None:
    assert current(database_url) is None

    upgrade(database_url)

    assert current(database_url) == HEAD
    every_table = REGISTRY_TABLES | INGEST_TABLES | REVIEW_TABLES | FEEDBACK_TABLES | ROLLOUT_TABLES
    assert _tables(database_url) == every_table | {"alembic_version"}


def test_second_upgrade_is_a_no_op(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)

    assert current(database_url) == HEAD


def test_migrations_match_the_table_metadata(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    assert diffs == []


def test_downgrade_removes_the_tables(database_url: str) -> None:
    upgrade(database_url)
    command.downgrade(alembic_config(database_url), "base")

    assert _tables(database_url) == {"alembic_version"}
    assert current(database_url) is None


def test_concurrent_upgrades_in_threads_both_succeed(database_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            upgrade(database_url)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert current(database_url) == HEAD


def test_concurrent_upgrades_in_processes_both_succeed(database_url: str) -> None:
    code = "import sys; from shared.db.migrate import upgrade; upgrade(sys.argv[1])"
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

    assert [process.returncode for process in processes] == [0, 0], outputs
    assert current(database_url) == HEAD
