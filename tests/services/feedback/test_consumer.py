"""The consumer against the real broker, storing into SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.feedback.app import create_app
from services.feedback.consumer import worker_config
from services.feedback.settings import FeedbackSettings
from shared.kafka import Output, create_producer
from shared.kafka.batch import produce_all
from shared.messages import ReviewRequest
from shared.settings import Settings
from tests.fixtures.kafka import read_topic
from tests.services.feedback.helpers import classified, content, human, label

pytestmark = pytest.mark.kafka


def test_the_store_fetches_with_its_own_long_wait() -> None:
    """It reads four busy topics and nothing waits on it: on the embedded broker each
    fetch costs CPU per partition, so it fetches seldom (docs/reliability.md, Soak)."""
    assert FeedbackSettings(_env_file=None).feedback_fetch_max_wait_ms == 1000
    settings = FeedbackSettings(_env_file=None, feedback_fetch_max_wait_ms=700)
    assert worker_config(settings).consumer_options == {"fetch_max_wait_ms": 700}


async def test_labels_predictions_and_items_reach_the_store(
    topics: Settings, migrated_database_url: str, tmp_path: Path
) -> None:
    settings = FeedbackSettings(
        **{
            **topics.model_dump(),
            "database_url": migrated_database_url,
            "feedback_batch_max_wait_ms": 20,
            "feedback_group_id": f"fb-{tmp_path.name}",
        }
    )
    t = settings
    outputs = [
        Output(t.topic_raw, b"x", content("x").encode()),
        Output(t.topic_classified, b"a", classified("a", "mlops").encode()),
        Output(t.topic_classified, b"x", classified("x", "mlops").encode()),
        # a reviewer's decision: read (not dead-lettered), not scored as a prediction
        Output(t.topic_classified, b"a", human("a", "other", guessed="mlops").encode()),
        # the canary's answer for the same item, from content.shadow: kept beside stable's
        Output(
            t.topic_shadow, b"a", classified("a", "mlops", version="v2", role="canary").encode()
        ),
        Output(t.topic_feedback, b"a", label("a", "mlops", label_id="L1").encode()),
        Output(t.topic_feedback, b"a", label("a", "mlops", label_id="L1").encode()),  # again
        Output(t.topic_feedback, b"x", label("x", "mlops", labeler="alice").encode()),
        Output(t.topic_feedback, b"x", label("x", "other", labeler="bob").encode()),
        Output(t.topic_feedback, b"bad", b"{not json"),
    ]
    producer = create_producer(settings)
    await producer.start()
    try:
        await produce_all(producer, outputs)
    finally:
        await producer.stop()

    metrics = CollectorRegistry()
    app = create_app(settings, metrics_registry=metrics, publisher=None, monitor=False)
    async with app.router.lifespan_context(app):
        state = app.state.feedback
        for _ in range(300):
            if len(state.store.accuracy()) == 2 and state.store.paired():
                break
            await asyncio.sleep(0.05)
        [request] = map(
            ReviewRequest.decode, await read_topic(settings, settings.topic_review, expect=1)
        )
        row, canary = state.store.accuracy()
        [paired] = state.store.paired()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://feedback") as http:
            ready = (await http.get("/readyz")).json()["checks"]
    assert ready == {
        "database": True,
        "broker": True,
        "schema": True,
        "making_progress": True,
        "broker_reachable": True,
    }
    assert request.item_id == "x"
    assert (row.model_version, row.samples, row.correct) == ("v1", 1, 1)
    assert (canary.model_version, canary.role, canary.samples) == ("v2", "canary", 1)
    assert (paired.stable_version, paired.canary_version, paired.both_correct) == ("v1", "v2", 1)
    assert metrics.get_sample_value("tagstream_feedback_labels_total", {"source": "reviewer"}) == 3
    letters = await read_topic(settings, settings.topic_dlq, expect=1)
    assert len(letters) == 1
