"""The feedback service's Kafka side: one consumer group over four topics.

``feedback.labels`` fill the gold-label store, ``content.classified`` and
``content.shadow`` (the other version's answer while a canary runs) the predictions
table, ``content.raw`` the item texts. Each batch is one database transaction (in a worker
thread); review requests for reviewer conflicts and dead letters are produced, and only
after the broker acknowledged them are the offsets committed (``run_batches``): at least
once, and idempotent because the store ignores what it already has.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import structlog

from services.feedback.metrics import FeedbackMetrics
from services.feedback.repository import BatchEffects, FeedbackStore
from services.feedback.settings import FeedbackSettings
from shared.kafka import ConsumerWorker, Output, WorkerConfig, dead_letter
from shared.kafka.batch import Record
from shared.kafka.topics import CLASSIFIED, DLQ, FEEDBACK, RAW, REVIEW, SHADOW
from shared.messages import (
    Classification,
    ContentItem,
    FeedbackLabel,
    Message,
    MessageError,
)

log = structlog.get_logger("services.feedback")

STAGE = "feedback.decode"


def worker_config(settings: FeedbackSettings) -> WorkerConfig:
    """The feedback store's consumer group over labels, decisions (both versions') and items."""
    s = settings
    return WorkerConfig(
        name="feedback",
        topics=(FEEDBACK.name(s), CLASSIFIED.name(s), SHADOW.name(s), RAW.name(s)),
        group_id=s.feedback_group_id,
        max_records=s.feedback_batch_max_items,
        max_wait_ms=s.feedback_batch_max_wait_ms,
        backoff_max_seconds=s.feedback_retry_backoff_max_seconds,
        stuck_after_seconds=s.feedback_stuck_after_seconds,
        consumer_options={"fetch_max_wait_ms": s.feedback_fetch_max_wait_ms},
    )


class FeedbackConsumer:
    """Consume, store, produce requeues: the shared worker with this handler and hook."""

    def __init__(
        self, settings: FeedbackSettings, store: FeedbackStore, metrics: FeedbackMetrics
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.last_batch_at: float | None = None
        self._acked_requeues: list[int] = []
        self._acked_reports: list[str] = []
        self._in_flight: BatchEffects | None = None
        self.worker = ConsumerWorker(
            settings, worker_config(settings), self.handle, on_batch=self._committed
        )

    @property
    def connected(self) -> bool:
        """The consumer is in its group (the broker answered)."""
        return self.worker.running

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; broker failures are retried with backoff."""
        await self.worker.run(stop)
        if self._acked_requeues or self._acked_reports:
            # Acknowledged requests not yet marked: mark them before leaving.
            requeued, reported = self._take_acked()
            await asyncio.to_thread(self.store.apply_batch, requeued=requeued, reported=reported)

    async def readiness(self) -> dict[str, bool]:
        """``consumer_running``, ``broker_reachable``, ``making_progress`` (the worker's)."""
        return await self.worker.readiness()

    def _take_acked(self) -> tuple[list[int], list[str]]:
        acked = self._acked_requeues, self._acked_reports
        self._acked_requeues, self._acked_reports = [], []
        return acked

    async def handle(self, records: Sequence[Record]) -> Sequence[Output]:
        """Decode and store one batch; returns the review requests and dead letters."""
        s = self.settings
        labels: list[FeedbackLabel] = []
        predictions: list[Classification] = []
        items: list[ContentItem] = []
        outputs: list[Output] = []
        kinds: dict[str, tuple[type[Message], list[Message]]] = {
            FEEDBACK.name(s): (FEEDBACK.message, labels),  # type: ignore[dict-item]
            CLASSIFIED.name(s): (CLASSIFIED.message, predictions),  # type: ignore[dict-item]
            SHADOW.name(s): (SHADOW.message, predictions),  # type: ignore[dict-item]
            RAW.name(s): (RAW.message, items),  # type: ignore[dict-item]
        }
        for record in records:
            message_type, sink = kinds[record.topic]
            try:
                sink.append(message_type.decode(record.value))
            except MessageError as exc:
                self.metrics.dead_letters.labels(topic=record.topic).inc()
                log.warning("record_dead_lettered", topic=record.topic, reason=exc.reason)
                outputs.append(
                    dead_letter(
                        record,
                        stage=STAGE,
                        error=exc.reason,
                        dlq_topic=DLQ.name(s),
                        kind=exc.kind,
                    )
                )
        requeued, reported = self._take_acked()
        effects = await asyncio.to_thread(
            self.store.apply_batch,
            labels=labels,
            predictions=predictions,
            items=items,
            requeued=requeued,
            reported=reported,
        )
        self._in_flight = effects
        for _, request in (*effects.requeue, *effects.reports):
            outputs.append(Output(REVIEW.name(s), request.item_id.encode(), request.encode()))
        return outputs

    def _committed(self, records: Sequence[Record], outputs: Sequence[Output]) -> None:
        effects, self._in_flight = self._in_flight, None
        self.last_batch_at = time.monotonic()
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
        for label_ids, request in effects.reports:
            self._acked_reports.extend(label_ids)
            log.info("user_report_sent_to_review", item_id=request.item_id, reports=len(label_ids))
        log.info(
            "feedback_batch_committed",
            size=len(records),
            new_labels=sum(effects.new_labels.values()),
            requeued=len(effects.requeue),
            reports_to_review=len(effects.reports),
        )
