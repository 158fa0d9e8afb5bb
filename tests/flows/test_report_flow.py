"""A user report through the real broker and both services, on SQLite and PostgreSQL.

POST /v1/reports (feedback) -> feedback.labels -> the feedback consumer -> review.requests
(v2, user_report) -> the review consumer -> the queue, where the reported item is
claimed ahead of an ordinary one with the users' suggestion. It is not gold until a
reviewer labels it; the reviewer's label (outbox -> feedback.labels) makes it gold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.feedback.app import create_app as create_feedback
from services.feedback.gold import read_gold_rows
from services.feedback.settings import FeedbackSettings
from services.review.app import create_app as create_review
from services.review.auth import create_account
from services.review.service import progress
from services.review.settings import ReviewSettings
from shared.db.session import make_engine
from shared.kafka import Output, create_producer
from shared.kafka.batch import produce_all
from shared.messages import Classification, ContentItem, ReviewRequest
from shared.settings import Settings
from tests.fixtures.db import migrated

pytestmark = pytest.mark.kafka

KEY = "report-flow-key-0123456789"
NOW = datetime.now(UTC)


def item(item_id: str, title: str) -> ContentItem:
    return ContentItem(item_id=item_id, title=title, description="", received_at=NOW)


def decision(item_id: str, tag: str, confidence: float, route: str) -> Classification:
    return Classification(
        item_id=item_id,
        tag=tag if route == "auto" else "needs_review",
        route=route,
        confidence=confidence,
        predicted_tag=tag,
        probabilities={tag: confidence, "other": round(1 - confidence, 3)},
        model_version="v1",
        role="stable",
        latency_ms=1.0,
        decided_at=NOW,
    )


async def until(condition: Callable[[], Any], within: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while not (found := await asyncio.to_thread(condition)):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
    return found


async def test_a_report_reaches_review_first_and_is_gold_only_after_a_label(
    topics: Settings, database_url: str, tmp_path: Path
) -> None:
    url = migrated(database_url)
    base = {**topics.model_dump(), "database_url": url, "registry_dir": tmp_path / "registry"}
    suffix = topics.topic_review.rsplit(".", 1)[-1]
    feedback_settings = FeedbackSettings(
        **base,
        feedback_api_keys=KEY,
        feedback_group_id=f"feedback-{suffix}",
        feedback_batch_max_wait_ms=50,
    )
    review_settings = ReviewSettings(
        **base,
        review_group_id=f"review-{suffix}",
        review_batch_max_wait_ms=50,
        review_outbox_poll_seconds=0.1,
    )
    ordinary = ReviewRequest(
        item_id="unsure",
        title="Half about models, half about cats",
        reason="low_confidence",
        predicted_tag="mlops",
        confidence=0.3,
        probabilities={"mlops": 0.3, "other": 0.7},
        model_version="v1",
        received_at=NOW,
        requested_at=NOW,
    )
    producer = create_producer(topics)
    await producer.start()
    try:  # what ingest and the classifier would have produced
        await produce_all(
            producer,
            [
                Output(topics.topic_raw, b"sure", item("sure", "Segmenting cells").encode()),
                Output(topics.topic_raw, b"unsure", item("unsure", ordinary.title).encode()),
                Output(
                    topics.topic_classified,
                    b"sure",
                    decision("sure", "mlops", 0.97, "auto").encode(),
                ),
                Output(
                    topics.topic_classified,
                    b"unsure",
                    decision("unsure", "other", 0.7, "review").encode(),
                ),
                Output(topics.topic_review, b"unsure", ordinary.encode()),
            ],
        )
    finally:
        await producer.stop()

    engine = make_engine(url)
    feedback = create_feedback(
        feedback_settings, metrics_registry=CollectorRegistry(), monitor=False
    )
    review = create_review(review_settings, metrics_registry=CollectorRegistry())
    try:
        async with (
            feedback.router.lifespan_context(feedback),
            review.router.lifespan_context(review),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=feedback), base_url="http://feedback"
            ) as reports,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=review), base_url="http://review"
            ) as reviewers,
        ):
            with review.state.review_db.sessions.begin() as session:
                token = create_account(session, "ann", "reviewer", NOW)[1]
            ann = {"Authorization": f"Bearer {token}"}
            # The item's text and decision are in the feedback store before the report.
            await until(lambda: feedback.state.feedback.store.latest_prediction("sure"))

            body = {
                "item_id": "sure",
                "suggested_tag": "computer-vision",
                "end_user_id": "end-user-7",
                "comment": "cells under a microscope: images",
            }
            for _ in range(200):  # the producer connects in the background
                accepted = await reports.post(
                    "/v1/reports", json=body, headers={"Authorization": f"Bearer {KEY}"}
                )
                if accepted.status_code != 503:
                    break
                await asyncio.sleep(0.05)
            assert accepted.status_code == 202, accepted.text

            def queue_depth() -> int:
                with review.state.review_db.sessions.begin() as session:
                    return progress(session, "nobody").queue_depth

            await until(lambda: queue_depth() == 2)  # the ordinary item and the reported one
            assert read_gold_rows(engine) == []  # reported, in review, not gold

            claimed = await reviewers.post("/v1/review/claim", headers=ann)
            assert claimed.status_code == 200
            first = claimed.json()
            assert (first["item_id"], first["reason"]) == ("sure", "user_report")
            assert (first["suggested_tag"], first["report_count"]) == ("computer-vision", 1)
            assert first["report_comment"] == "cells under a microscope: images"
            assert first["predicted_tag"] == "mlops"
            assert read_gold_rows(engine) == []

            labeled = await reviewers.post(
                "/v1/review/items/sure/label", headers=ann, json={"tag": "computer-vision"}
            )
            assert labeled.status_code == 200
            gold = await until(lambda: read_gold_rows(engine))
            assert [(row.item_id, row.tag) for row in gold] == [("sure", "computer-vision")]
            assert gold[0].label_ids == (labeled.json()["label_id"],)

            after = await reviewers.post("/v1/review/claim", headers=ann)
            assert after.json()["item_id"] == "unsure"  # the ordinary item comes next
    finally:
        engine.dispose()
