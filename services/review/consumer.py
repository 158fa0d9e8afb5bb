"""review.requests -> the review queue: at-least-once, idempotent on item id, poison -> DLQ.

Each micro-batch is stored in one transaction; offsets are committed (by ``run_batches``)
only after that commit and after any dead letters were acknowledged. A re-delivered
request finds its item id known and is ignored.

Each item keeps the traceparent of its request's ``process`` span (of the record's header
while tracing is off here), so its label, sent later by the outbox, is on its trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from sqlalchemy.orm import Session

from services.review.database import ReviewDatabase
from services.review.metrics import ReviewMetrics
from services.review.service import store_request
from services.review.settings import ReviewSettings
from shared.kafka import ConsumerWorker, Output, WorkerConfig, dead_letter
from shared.kafka.batch import Record
from shared.kafka.topics import DLQ, REVIEW
from shared.messages import MessageError, ReviewRequest
from shared.observability.tracing import traceparent_of

log = structlog.get_logger("services.review.consumer")


def worker_config(settings: ReviewSettings) -> WorkerConfig:
    """The review service's consumer group on ``review.requests``."""
    s = settings
    return WorkerConfig(
        name="review",
        topics=(REVIEW.name(s),),
        group_id=s.review_group_id,
        max_records=s.review_batch_max_items,
        max_wait_ms=s.review_batch_max_wait_ms,
        backoff_max_seconds=s.review_retry_backoff_max_seconds,
        stuck_after_seconds=s.review_stuck_after_seconds,
    )


def store_batch(
    session: Session, records: Sequence[Record], dlq_topic: str
) -> tuple[int, int, list[Output]]:
    """Store the batch's requests; (stored, duplicates, dead letters)."""
    stored = duplicates = 0
    letters: list[Output] = []
    now = datetime.now(UTC)
    for record in records:
        try:
            request = ReviewRequest.decode(record.value)
        except MessageError as exc:
            letters.append(
                dead_letter(
                    record,
                    stage="review.consume",
                    error=exc.reason,
                    dlq_topic=dlq_topic,
                    kind=exc.kind,
                )
            )
            continue
        if store_request(session, request, now, traceparent_of(record)):
            stored += 1
        else:
            duplicates += 1
    return stored, duplicates, letters


class ReviewConsumer:
    """The consumer group member on ``review.requests``: the shared worker, this handler."""

    def __init__(
        self, settings: ReviewSettings, database: ReviewDatabase, metrics: ReviewMetrics
    ) -> None:
        self._settings = settings
        self._database = database
        self._metrics = metrics
        self.worker = ConsumerWorker(settings, worker_config(settings), self._handle)

    @property
    def running(self) -> bool:
        return self.worker.running

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; failures are retried with backoff."""
        await self.worker.run(stop)

    async def readiness(self) -> dict[str, bool]:
        """``consumer_running``, ``broker_reachable``, ``making_progress`` (the worker's)."""
        return await self.worker.readiness()

    async def _handle(self, records: Sequence[Record]) -> Sequence[Output]:
        stored, duplicates, letters = await asyncio.to_thread(
            self._database.run, store_batch, records, DLQ.name(self._settings)
        )
        self._metrics.requests_stored.labels(result="stored").inc(stored)
        self._metrics.requests_stored.labels(result="duplicate").inc(duplicates)
        self._metrics.requests_stored.labels(result="dead_lettered").inc(len(letters))
        for letter in letters:
            log.warning("review_request_dead_lettered", item_key=letter.key)
        if stored or duplicates:
            log.info("review_requests_stored", stored=stored, duplicates=duplicates)
        return letters
