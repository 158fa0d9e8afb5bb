"""Consumer and outbox relay against the real broker: review.requests -> queue (once),
label -> feedback.labels and a human decision on content.classified after commit,
poison -> DLQ."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.review import service
from services.review.app import create_app
from services.review.database import ReviewDatabase
from services.review.settings import ReviewSettings
from shared.kafka import Output, create_producer
from shared.kafka.batch import produce_all
from shared.messages import Classification
from shared.settings import Settings
from tests.fixtures.kafka import read_all, read_topic
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
            "broker_reachable": True,
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


async def test_each_label_is_one_human_decision_on_content_classified(
    topics: Settings, migrated_database_url: str
) -> None:
    """Label, undo after the relay and relabel, audit disagreement: one decision a label."""
    settings = ReviewSettings(
        **{
            **topics.model_dump(),
            "database_url": migrated_database_url,
            "review_group_id": f"review-{topics.topic_review}",
            "review_outbox_poll_seconds": 0.1,
            "review_batch_max_wait_ms": 50,
        }
    )
    now = datetime.now(UTC)
    received = now - timedelta(minutes=5)
    requests = [
        request("h1", 0.2, received_at=received, requested_at=received),
        request("h2", 0.3, received_at=received, requested_at=received),
        # auto-accepted as mlops, sampled for audit
        request("h3", 0.95, reason="audit", received_at=received, requested_at=received),
    ]
    producer = create_producer(settings)
    await producer.start()
    try:
        await produce_all(
            producer,
            [Output(settings.topic_review, r.item_id.encode(), r.encode()) for r in requests],
        )
    finally:
        await producer.stop()

    registry = CollectorRegistry()
    app = create_app(settings, metrics_registry=registry)

    def relayed() -> float:
        return sum(
            registry.get_sample_value("tagstream_review_human_decisions_total", {"agrees": a})
            or 0.0
            for a in ("true", "false")
        )

    def claim_and_label(item_id: str, tag: str) -> str:
        with database.sessions.begin() as session:
            item = service.claim_next(session, "ann", datetime.now(UTC))
            assert item is not None
            assert item.item_id == item_id
            return service.label_item(session, "ann", item_id, tag, datetime.now(UTC)).label_id

    def undo_and_relabel(item_id: str, tag: str) -> str:
        with database.sessions.begin() as session:
            back = service.undo_last(session, "ann", datetime.now(UTC))
            assert back.item_id == item_id
        return claim_and_label(item_id, tag)

    async with app.router.lifespan_context(app):
        database: ReviewDatabase = app.state.review_db
        await wait_for(lambda: database.run(service.review_stats, now).queue_depth == 3)
        labels = [await asyncio.to_thread(claim_and_label, "h1", "mlops")]
        await wait_for(lambda: relayed() == 1)  # out before the undo: a correction follows
        labels.append(await asyncio.to_thread(undo_and_relabel, "h1", "other"))
        labels.append(await asyncio.to_thread(claim_and_label, "h2", "computer-vision"))
        labels.append(await asyncio.to_thread(claim_and_label, "h3", "other"))
        await wait_for(lambda: relayed() == 4)
        decisions = [
            Classification.decode(v) for v in await read_all(settings, settings.topic_classified)
        ]

    assert sorted(d.label_id or "" for d in decisions) == sorted(labels)  # one per label
    assert {(d.route, d.model_version, d.schema_version) for d in decisions} == {("human", "v1", 2)}
    latest = {d.item_id: d.tag for d in decisions}  # what a downstream consumer keeps
    assert latest == {"h1": "other", "h2": "computer-vision", "h3": "other"}
    assert [d.tag for d in decisions if d.item_id == "h1"] == ["mlops", "other"]
    h3 = next(d for d in decisions if d.item_id == "h3")
    assert (h3.predicted_tag, h3.tag) == ("mlops", "other")  # the audit correction
    assert all(d.latency_ms >= 5 * 60 * 1000 for d in decisions)  # from ingest, not claim
    agrees = registry.get_sample_value("tagstream_review_human_decisions_total", {"agrees": "true"})
    assert agrees == 1  # h1's first label chose the model's tag
    latency_count = registry.get_sample_value(
        "tagstream_review_human_decision_latency_seconds_count"
    )
    assert latency_count == 4
