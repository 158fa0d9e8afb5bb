"""Consumer and outbox relay against the real broker: review.requests -> queue (once),
label -> feedback.labels after commit, poison -> DLQ."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.review import service
from services.review.app import create_app
from services.review.database import ReviewDatabase
from services.review.settings import ReviewSettings
from shared.kafka import Output, create_producer
from shared.kafka.batch import produce_all
from shared.settings import Settings
from tests.fixtures.kafka import read_topic
from tests.services.review.conftest import request

pytestmark = pytest.mark.kafka


async def wait_for(condition, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await asyncio.to_thread(condition):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_requests_are_queued_once_and_labels_are_relayed(topics: Settings) -> None:
    settings = ReviewSettings(
        **{
            **topics.model_dump(),
            "review_group_id": f"review-{topics.topic_review}",
            "review_outbox_poll_seconds": 0.1,
            "review_batch_max_wait_ms": 50,
        }
    )
    now = datetime.now(UTC)
    one = request("a1", 0.2, received_at=now, requested_at=now)
    producer = create_producer(settings)
    await producer.start()
    try:
        await produce_all(
            producer,
            [
                Output(settings.topic_review, b"a1", one.encode()),
                Output(settings.topic_review, b"a1", one.encode()),
                Output(settings.topic_review, b"bad", b"{not json"),
            ],
        )
    finally:
        await producer.stop()

    app = create_app(settings, metrics_registry=CollectorRegistry())
    async with app.router.lifespan_context(app):
        database: ReviewDatabase = app.state.review_db
        await wait_for(lambda: database.run(service.review_stats, now).queue_depth == 1)
        dead = await read_topic(settings, settings.topic_dlq, expect=1)
        assert len(dead) == 1
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://review") as http:
            ready = (await http.get("/readyz")).json()["checks"]
        assert ready == {
            "database": True,
            "schema": True,
            "consumer_running": True,
            "making_progress": True,
        }

        def claim_and_label() -> str:
            with database.sessions.begin() as session:
                item = service.claim_next(session, "ann", datetime.now(UTC))
                assert item is not None
                assert item.item_id == "a1"
                return service.label_item(session, "ann", "a1", "mlops", datetime.now(UTC)).label_id

        label_id = await asyncio.to_thread(claim_and_label)
        values = await read_topic(settings, settings.topic_feedback, expect=1)
        assert database.run(service.review_stats, now).queue_depth == 0

    assert len(values) == 1
    label = json.loads(values[0])
    assert label["item_id"] == "a1"
    assert label["tag"] == "mlops"
    assert label["source"] == "reviewer"
    assert label["label_id"] == label_id
    assert label["labeler"] == "ann"
