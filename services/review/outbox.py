"""The outbox relay: a label's outbox rows are produced to their topics after commit.

A label has two rows: its FeedbackLabel (``feedback.labels``) and its human decision
(``content.classified``); both are keyed by item id and sent in row order.

A label reaches Kafka only after its transaction committed (the row exists only then),
and is never lost: a row is marked sent only after the broker acknowledged it, in the
same transaction that read it. The rows stay locked while they are produced (PostgreSQL:
``FOR UPDATE SKIP LOCKED``, so several relays share the work; SQLite: the transaction's
write lock), so an undo racing the relay either cancels the row before it is sent or
finds it sent. A crash between the ack and the commit re-sends the row: consumers keep
the latest label per label_id / (item, labeler) and dedupe decisions on label_id, so the
duplicate is harmless.

Each row is sent in a ``send <topic>`` span under the item's trace (the traceparent kept
with the item when its request was queued; a new trace for an item queued without one),
whose context goes in the record's ``traceparent`` header: the human decision and the
feedback service's handling of the label are on the item's trace.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from sqlalchemy.orm import Session

from services.review.database import ReviewDatabase
from services.review.metrics import ReviewMetrics
from services.review.repository import ReviewRepository
from shared.kafka.batch import Output, produce_all
from shared.observability.tracing import send_span, traceparent_context
from shared.stopping import sleep_or_stop

log = structlog.get_logger("services.review.outbox")


class OutboxRelay:
    """Moves outbox rows to Kafka; ``run(stop)`` polls until ``stop`` is set."""

    def __init__(
        self,
        database: ReviewDatabase,
        producer: AIOKafkaProducer,
        metrics: ReviewMetrics,
        *,
        batch: int,
        poll_seconds: float,
        decisions_topic: str,
    ) -> None:
        self._database = database
        self._producer = producer
        self._metrics = metrics
        self._batch = batch
        self._poll = poll_seconds
        self._decisions_topic = decisions_topic
        # One thread: the session that locked the rows is the one that marks them sent.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-outbox")

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    sent = await self.relay_once()
                except Exception as exc:
                    log.warning("outbox_relay_failed_retrying", error=repr(exc))
                    sent = 0
                if sent == 0:
                    await sleep_or_stop(stop, self._poll)
        finally:
            self._thread.shutdown(wait=True)

    async def relay_once(self) -> int:
        """Produce up to one batch of unsent rows; how many were sent."""
        loop = asyncio.get_running_loop()
        session = self._database.sessions()
        try:
            rows = await loop.run_in_executor(self._thread, self._read, session)
            if not rows:
                return 0
            with ExitStack() as spans:
                outputs = [
                    Output(
                        topic,
                        key.encode(),
                        json.dumps(payload).encode(),
                        spans.enter_context(
                            send_span(
                                "review",
                                topic,
                                key.encode(),
                                parent=traceparent_context(traceparent),
                            )
                        ),
                    )
                    for _, topic, key, payload, traceparent in rows
                ]
                await produce_all(self._producer, outputs)
            ids = [row_id for row_id, *_ in rows]
            await loop.run_in_executor(self._thread, self._mark_sent, session, ids)
        except BaseException:
            await loop.run_in_executor(self._thread, session.rollback)
            raise
        finally:
            await loop.run_in_executor(self._thread, session.close)
        for _, topic, key, payload, _ in rows:
            if topic == self._decisions_topic:
                self._metrics.decision_relayed(payload)
                log.info("human_decision_relayed", item_id=key, label_id=payload.get("label_id"))
            else:
                self._metrics.label_relayed(payload)
                log.info("label_relayed", item_id=key, label_id=payload.get("label_id"))
        return len(rows)

    def _read(self, session: Session) -> Sequence[tuple[int, str, str, dict[str, Any], str | None]]:
        session.begin()
        rows = ReviewRepository(session).unsent(self._batch)
        if not rows:
            # Ends the transaction in this thread, without waiting for the event loop: on
            # SQLite it holds the write lock, which every poll would otherwise keep across a
            # loop turn, stalling labels (and any blocking caller on the loop) meanwhile.
            session.rollback()
        return [(r.id, r.topic, r.key, dict(r.payload), r.traceparent) for r in rows]

    @staticmethod
    def _mark_sent(session: Session, ids: Sequence[int]) -> None:
        ReviewRepository(session).mark_sent(ids, datetime.now(UTC))
        session.commit()
