"""No loss and no false 202 while the broker is down: 503 + Retry-After, unready, and the
retry after recovery gets the id of the attempt that was not acknowledged."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.ingest.tables import IngestItemRow
from shared.db.session import make_engine
from shared.kafka import ensure_topics
from shared.messages import ContentItem
from shared.settings import Settings
from tagstream.local.broker import EmbeddedBroker, free_port
from tests.fixtures.kafka import read_topic
from tests.services.ingest.conftest import ingest_settings, running

pytestmark = pytest.mark.kafka


@pytest.fixture
def port() -> int:
    return free_port()


def outage_settings(kafka_settings: Settings, database_url: str, port: int) -> IngestSettings:
    return ingest_settings(
        kafka_settings,
        database_url=database_url,
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
        kafka_request_timeout_ms=2000,
        ingest_produce_timeout_seconds=2.0,
        ingest_retry_after_seconds=3,
        ingest_readiness_timeout_seconds=0.5,
        ingest_readiness_cache_seconds=0,
        ingest_connect_backoff_max_seconds=0.5,
    )


def pending_ids(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            query = select(IngestItemRow.item_id).where(IngestItemRow.state == "pending")
            return list(connection.scalars(query))
    finally:
        engine.dispose()


async def wait_ready(client: httpx.AsyncClient, within: float = 30) -> None:
    # aiokafka has no reconnected event: poll the readiness probe
    deadline = asyncio.get_running_loop().time() + within
    while (await client.get("/readyz")).status_code != 200:
        assert asyncio.get_running_loop().time() < deadline, "not ready again in time"
        await asyncio.sleep(0.2)


async def post_until_accepted(
    client: httpx.AsyncClient, item: dict[str, str], attempts: int = 10
) -> httpx.Response:
    """Retry on 503 as a scraper would. The first send after the broker comes back can
    fail (the embedded broker answers UnknownError to the batch it finds pending)."""
    for _ in range(attempts):
        response = await client.post("/v1/items", json=item)
        if response.status_code != 503:
            return response
        assert_unavailable(response)
        await asyncio.sleep(0.2)
    raise AssertionError(f"still 503 after {attempts} attempts")


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "3"
    assert "broker" in response.json()["detail"][0]["reason"]


async def test_broker_stopped_then_restarted(
    kafka_settings: Settings, migrated_database_url: str, port: int
) -> None:
    database_url = migrated_database_url
    settings = outage_settings(kafka_settings, database_url, port)
    broker = EmbeddedBroker(port=port).start()
    try:
        await ensure_topics(settings)
        async with running(create_app(settings)) as client:
            before = await client.post("/v1/items", json={"title": "before the outage"})
            assert before.status_code == 202

            broker.stop()
            item = {"title": "during the outage", "url": "https://x.org/outage"}
            during = await client.post("/v1/items", json=item)
            unready = await client.get("/readyz")

            assert_unavailable(during)
            assert unready.status_code == 503
            assert unready.json()["checks"] == {"database": True, "broker": False, "schema": True}
            [pending] = pending_ids(database_url)

            broker = EmbeddedBroker(port=port).start()  # memory only: topics are gone
            await ensure_topics(settings)
            await wait_ready(client)
            after = await post_until_accepted(client, item)

            assert after.status_code == 202, after.text
            assert after.json() == {"id": pending, "status": "accepted"}
            assert pending_ids(database_url) == []
            values = await read_topic(settings, settings.topic_raw, expect=1, within=10)
            assert {ContentItem.decode(v).item_id for v in values} == {pending}
    finally:
        broker.stop()


async def test_broker_down_at_start_up(kafka_settings: Settings, port: int) -> None:
    settings = outage_settings(kafka_settings, kafka_settings.database_url, port)
    broker = EmbeddedBroker(port=port)
    try:
        app = create_app(settings)
        async with running(app, wait_connected=False) as client:
            health = await client.get("/healthz")
            unready = await client.get("/readyz")
            refused = await client.post("/v1/items", json={"title": "early bird"})

            assert health.status_code == 200
            assert unready.status_code == 503
            assert_unavailable(refused)
            [pending] = pending_ids(settings.database_url)

            broker.start()
            await ensure_topics(settings)
            await asyncio.wait_for(app.state.ingest.publisher.wait_connected(), 20)
            accepted = await client.post("/v1/items", json={"title": "early bird"})

            assert accepted.json() == {"id": pending, "status": "accepted"}
            values = await read_topic(settings, settings.topic_raw, expect=1, within=10)
            assert [ContentItem.decode(v).item_id for v in values] == [pending]
    finally:
        broker.stop()
