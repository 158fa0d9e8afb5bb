"""review.requests -> the review queue: at-least-once, idempotent on item id, poison -> DLQ.

Each micro-batch is stored in one transaction; offsets are committed (by ``run_batches``)
only after that commit and after any dead letters were acknowledged. A re-delivered
request finds its item id known and is ignored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from aiokafka.errors import KafkaError
from sqlalchemy.orm import Session

from services.review.database import ReviewDatabase
from services.review.metrics import ReviewMetrics
from services.review.service import store_request
from services.review.settings import ReviewSettings
from shared.kafka import Output, create_consumer, create_producer, dead_letter, run_batches
from shared.kafka.batch import Record
from shared.messages import MessageError, ReviewRequest
from shared.stopping import sleep_or_stop

log = structlog.get_logger("services.review.consumer")


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
                dead_letter(record, stage="review.consume", error=exc.reason, dlq_topic=dlq_topic)
            )
            continue
        if store_request(session, request, now):
            stored += 1
        else:
            duplicates += 1
    return stored, duplicates, letters


class ReviewConsumer:
    """The consumer group member; ``run(stop)`` retries failures until ``stop``."""

    def __init__(
        self, settings: ReviewSettings, database: ReviewDatabase, metrics: ReviewMetrics
    ) -> None:
        self._settings = settings
        self._database = database
        self._metrics = metrics
        self.running = False
        self._backoff = 0.1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._consume(stop)
            except Exception as exc:
                log.warning("review_consumer_failed_retrying", error=repr(exc))
                await sleep_or_stop(stop, self._backoff)
                self._backoff = min(
                    self._backoff * 2, self._settings.review_retry_backoff_max_seconds
                )

    async def _consume(self, stop: asyncio.Event) -> None:
        s = self._settings
        producer = create_producer(s)
        consumer = create_consumer(s, group_id=s.review_group_id)
        consumer.subscribe([s.topic_review])
        try:
            await producer.start()
            await consumer.start()
            self.running = True
            log.info("consumer_started", topic=s.topic_review, group_id=s.review_group_id)
            while not stop.is_set():
                try:
                    await run_batches(
                        consumer,
                        producer,
                        self._handle,
                        max_records=s.review_batch_max_items,
                        max_wait_ms=s.review_batch_max_wait_ms,
                        stop=stop,
                    )
                except KafkaError as exc:
                    # Dead letters not acknowledged: nothing committed; rewind and retry.
                    log.warning("review_batch_failed_retrying", error=repr(exc))
                    for tp in consumer.assignment():
                        committed = await consumer.committed(tp)
                        if committed is None:
                            await consumer.seek_to_beginning(tp)
                        else:
                            consumer.seek(tp, committed)
                    await sleep_or_stop(stop, self._backoff)
        finally:
            self.running = False
            await consumer.stop()
            await producer.stop()

    async def _handle(self, records: Sequence[Record]) -> Sequence[Output]:
        stored, duplicates, letters = await asyncio.to_thread(
            self._database.run, store_batch, records, self._settings.topic_dlq
        )
        self._backoff = 0.1
        self._metrics.requests_stored.labels(result="stored").inc(stored)
        self._metrics.requests_stored.labels(result="duplicate").inc(duplicates)
        self._metrics.requests_stored.labels(result="dead_lettered").inc(len(letters))
        for letter in letters:
            log.warning("review_request_dead_lettered", item_key=letter.key)
        if stored or duplicates:
            log.info("review_requests_stored", stored=stored, duplicates=duplicates)
        return letters
