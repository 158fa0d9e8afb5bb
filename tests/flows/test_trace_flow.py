"""One posted item is one trace: ingest, classifier, review and feedback spans under one
trace id, carried by the W3C ``traceparent`` header of every Kafka record in between, up
to a reviewer's label sent by the review outbox minutes later and the feedback service's
handling of it.

The four services run in-process (their apps and lifespans, as ``serve()`` runs them)
against the real broker; spans go to the SDK's in-memory exporter.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from services.classifier.app import create_app as create_classifier
from services.feedback.app import create_app as create_feedback
from services.feedback.settings import FeedbackSettings
from services.ingest.app import create_app as create_ingest
from services.review.accounts import create_account
from services.review.app import create_app as create_review
from services.review.settings import ReviewSettings
from shared.settings import Settings
from tests.fixtures.kafka import eventually
from tests.fixtures.tracing import service_of, spans  # noqa: F401  (fixture)
from tests.services.classifier.conftest import classifier_settings, train_tiny
from tests.services.ingest.conftest import AUTH, ingest_settings

pytestmark = pytest.mark.kafka

#: Words the tiny model knows nothing of: near-uniform scores, so the item goes to review.
UNCLEAR = {"title": "Hello world", "description": "Nothing to see here.", "source": "trace"}


def of_item(finished: Sequence[ReadableSpan], item_id: str) -> list[ReadableSpan]:
    return [s for s in finished if (s.attributes or {}).get("tagstream.item_id") == item_id]


async def test_one_posted_items_spans_share_one_trace_across_every_service(
    topics: Settings,
    tmp_path: Path,
    spans: InMemorySpanExporter,  # noqa: F811
) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = classifier_settings(topics)
    train_tiny(settings, tmp_path)
    base = settings.model_dump()
    ingest = create_ingest(ingest_settings(topics), metrics_registry=CollectorRegistry())
    classifier = create_classifier(settings, metrics_registry=CollectorRegistry())
    review = create_review(
        ReviewSettings(
            **{
                **base,
                "review_group_id": f"review-{suffix}",
                "review_batch_max_wait_ms": 50,
                "review_outbox_poll_seconds": 0.1,
            }
        ),
        metrics_registry=CollectorRegistry(),
    )
    feedback = create_feedback(
        FeedbackSettings(
            **{**base, "feedback_group_id": f"feedback-{suffix}", "feedback_batch_max_wait_ms": 50}
        ),
        metrics_registry=CollectorRegistry(),
        monitor=False,
    )
    async with AsyncExitStack() as stack:
        for app in (ingest, classifier, review, feedback):
            await stack.enter_async_context(app.router.lifespan_context(app))
        await eventually(
            lambda: _connected(ingest.state.ingest.publisher), lambda ok: ok, within=20
        )
        transport = httpx.ASGITransport(app=ingest)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ingest", headers=AUTH
        ) as http:
            response = await http.post("/v1/items", json=UNCLEAR)
        assert response.status_code == 202, response.text
        item_id = response.json()["id"]

        def reached_every_service(finished: Sequence[ReadableSpan]) -> bool:
            services = {
                service_of(s) for s in of_item(finished, item_id) if s.name.startswith("process")
            }
            return {"classifier", "review", "feedback"} <= services

        await eventually(_finished(spans), reached_every_service, within=30)

        # a reviewer labels it (the item is stored: its process span ended after the commit)
        with review.state.review_db.sessions.begin() as session:
            _, token = create_account(session, "rita", "reviewer", datetime.now(UTC))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=review),
            base_url="http://review",
            headers={"Authorization": f"Bearer {token}"},
        ) as http:
            claimed = await http.post("/v1/review/claim")
            assert claimed.status_code == 200, claimed.text
            assert claimed.json()["item_id"] == item_id
            tag = review.state.settings.approved_tags[0]
            labelled = await http.post(f"/v1/review/items/{item_id}/label", json={"tag": tag})
            assert labelled.status_code == 200, labelled.text

        def label_handled(finished: Sequence[ReadableSpan]) -> bool:
            return any(
                s.name == f"process {topics.topic_feedback}" and service_of(s) == "feedback"
                for s in of_item(finished, item_id)
            )

        finished = await eventually(_finished(spans), label_handled, within=30)

    mine = of_item(finished, item_id)
    [post] = [s for s in finished if s.name == "POST /v1/items"]
    assert post.kind is SpanKind.SERVER
    assert service_of(post) == "ingest"
    trace_id = post.context.trace_id
    by_id = {s.context.span_id: s for s in finished}

    def step(service: str, name: str) -> ReadableSpan:
        [span] = [s for s in mine if service_of(s) == service and s.name == name]
        assert span.context.trace_id == trace_id, f"{service} {name} left the item's trace"
        return span

    send = step("ingest", f"send {topics.topic_raw}")
    classify = step("classifier", f"process {topics.topic_raw}")
    queued = step("review", f"process {topics.topic_review}")
    stored_item = step("feedback", f"process {topics.topic_raw}")
    label_sent = step("review", f"send {topics.topic_feedback}")
    decision_sent = step("review", f"send {topics.topic_classified}")
    label_stored = step("feedback", f"process {topics.topic_feedback}")
    decisions = {
        s.parent.span_id if s.parent else None: s
        for s in mine
        if service_of(s) == "feedback" and s.name == f"process {topics.topic_classified}"
    }
    # the chain of parents: request -> send -> classifier -> (review | feedback)
    assert send.parent is not None
    assert by_id[send.parent.span_id] is post
    assert classify.parent is not None
    assert classify.parent.span_id == send.context.span_id
    assert queued.parent is not None
    assert queued.parent.span_id == classify.context.span_id
    assert stored_item.parent is not None
    assert stored_item.parent.span_id == send.context.span_id
    # the classifier's decision and the reviewer's, both stored by feedback in the trace
    assert set(decisions) == {classify.context.span_id, decision_sent.context.span_id}
    assert all(s.context.trace_id == trace_id for s in decisions.values())
    # the reviewer's label: sent under the review consumer's span, handled by feedback
    for sent in (label_sent, decision_sent):
        assert sent.kind is SpanKind.PRODUCER
        assert sent.parent is not None
        assert sent.parent.span_id == queued.context.span_id
    assert label_stored.parent is not None
    assert label_stored.parent.span_id == label_sent.context.span_id
    # each batch span is linked to the item's trace, so a batch view leads back to it
    batches = [s for s in finished if s.name == "classifier batch"]
    assert any(link.context.trace_id == trace_id for b in batches for link in b.links)


async def _connected(publisher: object) -> bool:
    return bool(getattr(publisher, "connected", False))


def _finished(exporter: InMemorySpanExporter):  # type: ignore[no-untyped-def]
    async def probe() -> tuple[ReadableSpan, ...]:
        return exporter.get_finished_spans()

    return probe
