"""A database migrated by the single chain of before (0001..0006, one ``alembic_version``)
upgrades cleanly into one chain per owner."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from shared.db.legacy import LEGACY_VERSION_TABLE, owner_revision
from shared.db.migrate import (
    MIGRATIONS_DIR,
    current,
    schema_current,
    upgrade,
)
from shared.db.owners import SchemaNotUpgraded
from shared.db.session import make_engine
from tagstream.schema import INGEST, REGISTRY, SCHEMA_OWNERS, upgrade_all
from tests.shared.db.test_migrations import (
    HEADS,
    TABLES,
    VERSION_TABLES,
    upgrade_in_two_processes,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
# The old chain, rebuilt from the owners' files: same DDL, the old ids and order.
OLD_CHAIN = (
    ("0001", "shared/registry/migrations/0001_model_registry.py"),
    ("0002", "services/ingest/migrations/0001_ingest_items.py"),
    ("0003", "services/review/migrations/0001_review.py"),
    ("0004", "services/feedback/migrations/0001_feedback.py"),
    ("0005", "shared/registry/migrations/0002_model_traffic.py"),
    ("0006", "services/rollout/migrations/0001_rollouts.py"),
)
CREATED_AT = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture
def old_chain(tmp_path: Path) -> Path:
    folder = tmp_path / "old_chain"
    folder.mkdir()
    previous = None
    for revision, source in OLD_CHAIN:
        body = (REPO_ROOT / source).read_text()
        body = re.sub(r'^revision: str = "\w+"', f'revision: str = "{revision}"', body, flags=re.M)
        body = re.sub(
            r"^down_revision: str \| None = .*$",
            f"down_revision: str | None = {previous!r}",
            body,
            flags=re.M,
        )
        (folder / f"{revision}_{Path(source).name}").write_text(body)
        previous = revision
    return folder


def migrate_the_old_way(url: str, chain: Path, revision: str) -> None:
    """What tagstream's ``upgrade(url)`` did before: one chain, one ``alembic_version``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(chain))
    config.attributes["database_url"] = url
    command.upgrade(config, revision)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _revisions(url: str) -> dict[str, str | None]:
    return {owner.name: current(url, owner) for owner in SCHEMA_OWNERS}


def _old_revision(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


def test_old_revisions_map_to_the_owner_revisions_that_made_the_same_tables() -> None:
    expected = {
        "0001": {"registry": "registry_0001"},
        "0002": {"registry": "registry_0001", "ingest": "ingest_0001"},
        "0003": {"registry": "registry_0001", "ingest": "ingest_0001", "review": "review_0001"},
        "0004": {
            "registry": "registry_0001",
            "ingest": "ingest_0001",
            "review": "review_0001",
            "feedback": "feedback_0001",
        },
        "0005": {
            "registry": "registry_0002",
            "ingest": "ingest_0001",
            "review": "review_0001",
            "feedback": "feedback_0001",
        },
        "0006": {  # the heads when the single chain ended; later migrations are newer
            "registry": "registry_0002",
            "ingest": "ingest_0001",
            "review": "review_0001",
            "feedback": "feedback_0001",
            "rollout": "rollout_0001",
        },
    }
    for old, owners in expected.items():
        mapped = {owner.name: owner_revision(owner, old) for owner in SCHEMA_OWNERS}
        assert mapped == {name: owners.get(name) for name in TABLES}, old
    with pytest.raises(ValueError, match="not made by tagstream"):
        owner_revision(REGISTRY, "abc123")


def test_the_rebuilt_old_chain_is_the_old_one(database_url: str, old_chain: Path) -> None:
    migrate_the_old_way(database_url, old_chain, "head")

    assert _old_revision(database_url) == "0006"
    # the tables of the owners' chains since (feedback_0002) came after the old chain
    later = {"feedback_report_requests"}
    old_tables = set().union(*TABLES.values()) - later
    assert _tables(database_url) == old_tables | {LEGACY_VERSION_TABLE}


@pytest.mark.parametrize("old", ["0001", "0003", "0006"])
def test_a_database_of_the_old_chain_is_adopted_with_its_rows(
    database_url: str, old_chain: Path, old: str
) -> None:
    migrate_the_old_way(database_url, old_chain, old)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO model_versions (version, name, status, created_at, data_hash,"
                    " params, metrics, thresholds, classes, model_card) VALUES ('v1', 'tagger',"
                    " 'stable', :at, 'h', '{}', '{}', '{}', '[]', '')"
                ),
                {"at": CREATED_AT},
            )

        upgrade_all(database_url)

        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version FROM model_versions")).all()
    finally:
        engine.dispose()
    assert versions == [("v1",)]
    assert _revisions(database_url) == HEADS
    assert _tables(database_url) == set().union(*TABLES.values()) | VERSION_TABLES
    assert all(schema_current(database_url, owner) for owner in SCHEMA_OWNERS)


def test_one_owner_alone_refuses_an_old_database(database_url: str, old_chain: Path) -> None:
    migrate_the_old_way(database_url, old_chain, "0002")

    assert not any(schema_current(database_url, owner) for owner in SCHEMA_OWNERS)
    with pytest.raises(SchemaNotUpgraded, match="tagstream db upgrade"):
        upgrade(database_url, INGEST)
    assert _old_revision(database_url) == "0002"


def test_a_database_not_made_by_tagstream_is_left_alone(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
            connection.execute(text("INSERT INTO alembic_version VALUES ('abc123')"))
    finally:
        engine.dispose()

    with pytest.raises(ValueError, match="not made by tagstream"):
        upgrade_all(database_url)

    assert _tables(database_url) == {LEGACY_VERSION_TABLE}
    assert _old_revision(database_url) == "abc123"


def test_concurrent_conversions_in_processes_both_succeed(
    database_url: str, old_chain: Path
) -> None:
    migrate_the_old_way(database_url, old_chain, "0004")
    runs = upgrade_in_two_processes(database_url)

    assert [code for code, _ in runs] == [0, 0], "\n".join(out for _, out in runs)
    assert _revisions(database_url) == HEADS
    assert LEGACY_VERSION_TABLE not in _tables(database_url)
