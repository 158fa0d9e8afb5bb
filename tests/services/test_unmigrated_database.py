"""Every service started on a database nobody migrated stays up, answers /readyz 503 with
``schema: false``, and says to run ``tagstream db upgrade``; none of them migrates it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import inspect
from structlog.testing import capture_logs

from services.classifier.app import create_app as classifier_app
from services.classifier.settings import ClassifierSettings
from services.feedback.app import create_app as feedback_app
from services.feedback.settings import FeedbackSettings
from services.ingest.app import create_app as ingest_app
from services.ingest.settings import IngestSettings
from services.review.app import create_app as review_app
from services.review.settings import ReviewSettings
from services.rollout.app import create_app as rollout_app
from services.rollout.settings import RolloutSettings
from shared.db.session import make_engine
from tests.fixtures.db import migrated

# Nothing listens here: the Kafka clients keep retrying in the background meanwhile.
NO_BROKER = "127.0.0.1:1"


@asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


async def unready_with_a_hint(app: FastAPI, database_url: str) -> dict[str, bool]:
    with capture_logs() as logs:
        async with started(app) as client:
            ready = await client.get("/readyz")
    assert ready.status_code == 503
    hints = [entry["hint"] for entry in logs if entry["event"] == "schema_not_migrated"]
    assert len(hints) == 1
    assert "run `tagstream db upgrade`" in hints[0]
    engine = make_engine(database_url)
    try:
        assert inspect(engine).get_table_names() == []  # nobody migrated it
    finally:
        engine.dispose()
    checks: dict[str, bool] = ready.json()["checks"]
    return checks


async def test_review_is_unready_until_migrated_then_ready(database_url: str) -> None:
    settings = ReviewSettings(environment="test", database_url=database_url)
    assert (await unready_with_a_hint(review_app(settings, run_kafka=False), database_url)) == {
        "database": True,
        "schema": False,
    }

    migrated(database_url)
    async with started(review_app(settings, run_kafka=False)) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "schema": True}


async def test_ingest(database_url: str) -> None:
    settings = IngestSettings(
        environment="test",
        database_url=database_url,
        kafka_bootstrap_servers=NO_BROKER,
        ingest_api_keys="a-test-key-of-enough-length",
    )
    checks = await unready_with_a_hint(ingest_app(settings), database_url)
    assert checks["schema"] is False


async def test_feedback(database_url: str, tmp_path: Path) -> None:
    settings = FeedbackSettings(
        environment="test",
        database_url=database_url,
        registry_dir=tmp_path / "registry",
        kafka_bootstrap_servers=NO_BROKER,
    )
    app = feedback_app(settings, consume=False, monitor=False)
    checks = await unready_with_a_hint(app, database_url)
    assert checks["schema"] is False


async def test_rollout(database_url: str, tmp_path: Path) -> None:
    settings = RolloutSettings(
        environment="test",
        database_url=database_url,
        registry_dir=tmp_path / "registry",
        kafka_bootstrap_servers=NO_BROKER,
    )
    checks = await unready_with_a_hint(rollout_app(settings, run_loop=False), database_url)
    assert checks["schema"] is False


async def test_classifier(database_url: str, tmp_path: Path) -> None:
    settings = ClassifierSettings(
        environment="test",
        database_url=database_url,
        registry_dir=tmp_path / "registry",
        kafka_bootstrap_servers=NO_BROKER,
    )
    checks = await unready_with_a_hint(classifier_app(settings), database_url)
    assert checks["schema"] is False
    assert checks["model_loaded"] is False
