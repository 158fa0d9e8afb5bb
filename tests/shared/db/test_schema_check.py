"""The ``schema`` readiness check: False (with one hint) until migrated, then True."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from structlog.testing import capture_logs

from shared.db.migrate import upgrade
from shared.db.schema_check import SchemaCheck
from shared.db.session import make_engine
from tagstream.schema import INGEST, REGISTRY


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    built = make_engine(database_url)
    yield built
    built.dispose()


async def test_false_until_attached() -> None:
    assert await SchemaCheck(INGEST)() is False


async def test_false_with_one_hint_until_every_owner_is_migrated(
    database_url: str, engine: Engine
) -> None:
    check = SchemaCheck(INGEST, REGISTRY)

    with capture_logs() as logs:
        attached = await check.attach(engine)
        again = await check()
        upgrade(database_url, INGEST)
        half = await check()
        upgrade(database_url, REGISTRY)
        migrated = await check()

    assert (attached, again, half, migrated) == (False, False, False, True)
    hints = [entry for entry in logs if entry["event"] == "schema_not_migrated"]
    assert len(hints) == 1
    assert hints[0]["owners"] == ["ingest", "registry"]
    assert "run `tagstream db upgrade`" in hints[0]["hint"]


async def test_stays_true_once_current(database_url: str, engine: Engine) -> None:
    upgrade(database_url, INGEST)
    check = SchemaCheck(INGEST)
    assert await check.attach(engine) is True

    # a newer release's upgrade moves the revision on; this process keeps serving
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version_ingest SET version_num = 'ingest_0002'")

    assert await check() is True
    assert await SchemaCheck(INGEST).attach(engine) is False


async def test_an_unreachable_database_is_false_without_the_hint() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none")
    try:
        with capture_logs() as logs:
            assert await SchemaCheck(INGEST).attach(engine) is False
    finally:
        engine.dispose()
    assert [entry for entry in logs if entry["event"] == "schema_not_migrated"] == []
