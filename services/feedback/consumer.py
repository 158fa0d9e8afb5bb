"""The feedback service's Kafka side: one consumer group over three topics.

``feedback.labels`` fill the gold-label store, ``content.classified`` the predictions
table, ``content.raw`` the item texts. Each batch is one database transaction (in a worker
thread); review requests for reviewer conflicts and dead letters are produced, and only
after the broker acknowledged them are the offsets committed (``run_batches``): at least
once, and idempotent because the store ignores what it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import structlog
from aiokafka.errors import KafkaError

from services.feedback.metrics import FeedbackMetrics
from services.feedback.repository import BatchEffects, FeedbackStore
from services.feedback.settings import FeedbackSettings
from shared.kafka import (
    Output,
    create_consumer,
    create_producer,
    dead_letter,
    ensure_topics,
    run_batches,
)
from shared.kafka.batch import Record
from shared.messages import (
    Classification,
    ContentItem,
    FeedbackLabel,
    Message,
    MessageError,
)
from shared.stopping import sleep_or_stop

log = structlog.get_logger("services.feedback")

STAGE = "feedback.decode"


class FeedbackConsumer:
    """Consume, store, produce requeues; tracks readiness for ``/readyz``."""

    def __init__(
        self, settings: FeedbackSettings, store: FeedbackStore, metrics: FeedbackMetrics
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.connected = False
        self.last_batch_at: float | None = None
        self._acked_requeues: list[int] = []
        self._in_flight: BatchEffects | None = None
        self._backoff = 0.1

    @property
    def topics(self) -> tuple[str, str, str]:
        s = self.settings
        return (s.topic_feedback, s.topic_classified, s.topic_raw)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; broker failures are retried with backoff."""
        while not stop.is_set():
            try:
                await self._consume(stop)
            except Exception as exc:
                log.exception("feedback_consumer_failed_restarting", error=str(exc))
                await sleep_or_stop(stop, self._backoff)
                self._backoff = min(self._backoff * 2, 10.0)
        if self._acked_requeues:
            # Acknowledged requeues not yet marked: mark them before leaving.
            await asyncio.to_thread(self.store.apply_batch, requeued=self._take_acked())

    async def _consume(self, stop: asyncio.Event) -> None:
        s = self.settings
        with contextlib.suppress(KafkaError, OSError):
            await ensure_topics(s, (*self.topics, s.topic_review, s.topic_dlq))
        producer = create_producer(s)
        consumer = create_consumer(s, group_id=s.feedback_group_id)
        consumer.subscribe(list(self.topics))
        try:
            await producer.start()
            await consumer.start()
            self.connected = True
            log.info("feedback_consumer_started", topics=list(self.topics))
            while not stop.is_set():
                try:
                    await run_batches(
                        consumer,
                        producer,
                        self.handle,
                        max_records=s.feedback_batch_max_items,
                        max_wait_ms=s.feedback_batch_max_wait_ms,
                        stop=stop,
                        on_batch=self._committed,
                    )
                except KafkaError as exc:
                    log.warning("feedback_batch_failed_retrying", error=repr(exc))
                    await asyncio.sleep(self._backoff)
                    self._backoff = min(self._backoff * 2, 10.0)
                    for tp in consumer.assignment():
                        committed = await consumer.committed(tp)
                        if committed is None:
                            await consumer.seek_to_beginning(tp)
                        else:
                            consumer.seek(tp, committed)
        finally:
            self.connected = False
            await consumer.stop()
            await producer.stop()

    def _take_acked(self) -> list[int]:
        acked, self._acked_requeues = self._acked_requeues, []
        return acked

    async def handle(self, records: Sequence[Record]) -> Sequence[Output]:
        """Decode and store one batch; returns the review requests and dead letters."""
        s = self.settings
        labels: list[FeedbackLabel] = []
        predictions: list[Classification] = []
        items: list[ContentItem] = []
        outputs: list[Output] = []
        kinds: dict[str, tuple[type[Message], list[Message]]] = {
            s.topic_feedback: (FeedbackLabel, labels),  # type: ignore[dict-item]
            s.topic_classified: (Classification, predictions),  # type: ignore[dict-item]
            s.topic_raw: (ContentItem, items),  # type: ignore[dict-item]
        }
        for record in records:
            message_type, sink = kinds[record.topic]
            try:
                sink.append(message_type.decode(record.value))
            except MessageError as exc:
                self.metrics.dead_letters.labels(topic=record.topic).inc()
                log.warning("record_dead_lettered", topic=record.topic, reason=exc.reason)
                outputs.append(
                    dead_letter(record, stage=STAGE, error=exc.reason, dlq_topic=s.topic_dlq)
                )
        effects = await asyncio.to_thread(
            self.store.apply_batch,
            labels=labels,
            predictions=predictions,
            items=items,
            requeued=self._take_acked(),
        )
        self._in_flight = effects
        for _, request in effects.requeue:
            outputs.append(Output(s.topic_review, request.item_id.encode(), request.encode()))
        return outputs

    def _committed(self, records: Sequence[Record], outputs: Sequence[Output]) -> None:
        effects, self._in_flight = self._in_flight, None
        self.last_batch_at = time.monotonic()
        self._backoff = 0.1
        if effects is None:
            return
        for source, n in effects.new_labels.items():
            self.metrics.labels.labels(source=source).inc(n)
        requeued = {request.item_id for _, request in effects.requeue}
        for item_id in effects.new_conflicts:
            outcome = "requeued" if item_id in requeued else "not_requeued"
            self.metrics.conflicts.labels(outcome=outcome).inc()
            log.warning("reviewer_conflict", item_id=item_id, outcome=outcome)
        # Marked in the next batch's transaction (or on stop), off the event loop.
        self._acked_requeues.extend(conflict_id for conflict_id, _ in effects.requeue)
        log.info(
            "feedback_batch_committed",
            size=len(records),
            new_labels=sum(effects.new_labels.values()),
            requeued=len(effects.requeue),
        )
