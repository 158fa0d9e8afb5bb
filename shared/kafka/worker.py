"""The consumer-group member every service runs around its own batch handler.

``ConsumerWorker.run(stop)`` is the whole life of a consumer: connect a producer and a
consumer, run the commit-after-ack loop (``run_batches``) with the service's handler,
and on any failure wait a jittered backoff and start again; never fatal. A batch whose
outputs the broker did not acknowledge committed nothing, so the worker rewinds to the
committed offsets and the batch is processed again (at least once; consumers downstream
are idempotent on their key).

For ``/readyz`` it keeps the facts a probe needs: whether a consumer is running, the lag
of the partitions it holds (highwater minus committed) and whether it is making
progress: ``stuck()`` is true when records wait and nothing was committed for
``stuck_after_seconds`` (a handler hanging on a database, a poison loop).

``stop`` is honoured in every wait: the backoff pauses and the lag refresh return at
once, and ``run_batches`` finishes the batch in flight, commits it and returns, so the
consumer leaves its group (handing the partitions over at once, not after a timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from shared.kafka.backoff import Backoff
from shared.kafka.batch import Handler, Hook, Output, Record, run_batches
from shared.kafka.clients import create_consumer, create_producer
from shared.settings import Settings
from shared.stopping import sleep_or_stop

log = structlog.get_logger(__name__)

LAG_INTERVAL_SECONDS = 1.0
BROKER_CHECK_TIMEOUT_SECONDS = 2.0
COMMITTED_LOOKUP_TIMEOUT_SECONDS = 2.0

#: Told which stage failed: ``"consumer"`` (connect or loop) or ``"produce"`` (a batch).
ErrorHook = Callable[[str], None]
#: Told the lag per held partition, and every partition held (to clear the others).
LagHook = Callable[[Mapping[int, int], Iterable[int]], None]
#: Told the partitions of each assignment the group gives this member (every generation).
AssignHook = Callable[[Sequence[int]], None]


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker reads and how it paces itself, taken from the service's settings."""

    name: str
    topics: tuple[str, ...]
    group_id: str
    max_records: int
    max_wait_ms: int
    backoff_max_seconds: float
    stuck_after_seconds: float
    #: Passed to ``create_consumer`` / ``create_producer`` (timeouts, batch sizes).
    consumer_options: Mapping[str, Any] = field(default_factory=dict)
    producer_options: Mapping[str, Any] = field(default_factory=dict)


class CommittedOffsets(ConsumerRebalanceListener):
    """Committed offsets of the partitions held (the base of lag), kept across rebalances."""

    def __init__(
        self, consumer: AIOKafkaConsumer | None = None, on_assign: AssignHook | None = None
    ) -> None:
        self.consumer = consumer
        self.committed: dict[TopicPartition, int] = {}
        self._on_assign = on_assign

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self.committed.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        partitions = sorted(tp.partition for tp in assigned)
        log.info("partitions_assigned", partitions=partitions)
        if self._on_assign is not None:
            self._on_assign(partitions)
        if self.consumer is None:
            return
        for tp in assigned:
            try:
                offset = await asyncio.wait_for(
                    self.consumer.committed(tp), timeout=COMMITTED_LOOKUP_TIMEOUT_SECONDS
                )
            except (KafkaError, TimeoutError):
                continue  # update_lag falls back to the position
            # No commit yet: a new group starts at the beginning (auto_offset_reset).
            self.committed[tp] = offset or 0

    def record(self, records: Sequence[Record]) -> None:
        """The batch's offsets were committed: move the base of lag past them."""
        held = self.consumer.assignment() if self.consumer is not None else set()
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp in held:
                self.committed[tp] = max(self.committed.get(tp, 0), record.offset + 1)


async def rewind(consumer: AIOKafkaConsumer) -> None:
    """Seek every held partition back to its committed offset (the beginning if none)."""
    for tp in consumer.assignment():
        committed = await consumer.committed(tp)
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)


class ConsumerWorker:
    """One consumer-group member: clients, batch loop, backoff, rewind and health facts."""

    def __init__(
        self,
        settings: Settings,
        config: WorkerConfig,
        handle: Handler,
        *,
        on_batch: Hook | None = None,
        on_error: ErrorHook | None = None,
        on_lag: LagHook | None = None,
        on_assign: AssignHook | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self._handle = handle
        self._on_batch = on_batch
        self._on_error = on_error
        self._on_lag = on_lag
        self._on_assign = on_assign
        self.backoff = backoff or Backoff(config.backoff_max_seconds)
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets = CommittedOffsets()
        self._lag: dict[int, int] = {}
        self._last_progress = time.monotonic()
        self._log = log.bind(consumer=config.name, group_id=config.group_id)

    @property
    def running(self) -> bool:
        """A consumer is connected and in its group."""
        return self._consumer is not None

    @property
    def lag(self) -> dict[int, int]:
        """Records not yet committed per held partition, as of the last refresh."""
        return dict(self._lag)

    # -- life cycle ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; failures are retried with backoff, never fatal."""
        while not stop.is_set():
            try:
                await self._consume(stop)
            except Exception as exc:
                self._failed("consumer")
                self._log.exception("consumer_failed_restarting", error=str(exc))
                await sleep_or_stop(stop, self.backoff.next())

    async def _consume(self, stop: asyncio.Event) -> None:
        """One consumer and producer for as long as they work."""
        c = self.config
        producer = create_producer(self.settings, **c.producer_options)
        consumer = create_consumer(self.settings, group_id=c.group_id, **c.consumer_options)
        self._offsets = CommittedOffsets(consumer, self._on_assign)
        consumer.subscribe(list(c.topics), listener=self._offsets)
        try:
            await producer.start()
            await consumer.start()
            self._consumer = consumer
            self._last_progress = time.monotonic()
            self._log.info("consumer_started", topics=list(c.topics))
            monitor = asyncio.create_task(self._watch_lag(consumer, stop), name=f"{c.name}-lag")
            try:
                await self._batches(consumer, producer, stop)
            finally:
                monitor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await monitor
        finally:
            self._consumer = None
            self._lag = {}
            # Leaving the group hands the partitions over at once, not after a timeout.
            await consumer.stop()
            await producer.stop()
            if self._on_lag is not None:
                self._on_lag({}, ())
            self._log.info("consumer_stopped")

    async def _batches(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, stop: asyncio.Event
    ) -> None:
        c = self.config
        while not stop.is_set():
            try:
                await run_batches(
                    consumer,
                    producer,
                    self._handle,
                    max_records=c.max_records,
                    max_wait_ms=c.max_wait_ms,
                    stop=stop,
                    on_batch=self._committed,
                    service=c.name,
                )
            except KafkaError as exc:
                # Outputs not acknowledged (broker down or slow): nothing was committed.
                # Rewind to the committed offsets so the batch is processed again.
                self._failed("produce")
                self._log.warning("batch_failed_retrying", error=repr(exc))
                await sleep_or_stop(stop, self.backoff.next())
                if stop.is_set():
                    return
                await rewind(consumer)

    def _committed(self, records: Sequence[Record], outputs: Sequence[Output]) -> None:
        """After the batch's outputs were acknowledged and its offsets committed."""
        self._offsets.record(records)
        self._last_progress = time.monotonic()
        self.backoff.reset()
        if self._on_batch is not None:
            self._on_batch(records, outputs)

    def _failed(self, stage: str) -> None:
        if self._on_error is not None:
            self._on_error(stage)

    # -- health ----------------------------------------------------------------------

    async def _watch_lag(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.update_lag(consumer)
            await sleep_or_stop(stop, LAG_INTERVAL_SECONDS)

    async def update_lag(self, consumer: AIOKafkaConsumer) -> dict[int, int]:
        """Records per held partition not yet committed: highwater minus committed.

        ``end_offsets()`` is wrong on the embedded broker; the highwater mark comes
        with every fetch response instead (prefetching keeps it fresh while a batch runs).
        """
        assigned = consumer.assignment()
        lag: dict[int, int] = {}
        for tp in assigned:
            high = consumer.highwater(tp)
            if high is None:
                continue
            done = self._offsets.committed.get(tp)
            if done is None:
                try:
                    done = await asyncio.wait_for(consumer.position(tp), timeout=1.0)
                except (KafkaError, TimeoutError):
                    continue
            lag[tp.partition] = max(0, high - done)
        self._lag = lag
        if not any(lag.values()):
            self._last_progress = time.monotonic()  # nothing waiting: idle, not stuck
        if self._on_lag is not None:
            self._on_lag(lag, [tp.partition for tp in assigned])
        return lag

    def stuck(self) -> bool:
        """Records are waiting and nothing was committed for ``stuck_after_seconds``."""
        waited = time.monotonic() - self._last_progress
        return any(self._lag.values()) and waited > self.config.stuck_after_seconds

    async def broker_reachable(self) -> bool:
        """The running consumer gets an answer to a metadata request in time."""
        consumer = self._consumer
        if consumer is None:
            return False
        try:
            await asyncio.wait_for(consumer.topics(), timeout=BROKER_CHECK_TIMEOUT_SECONDS)
        except (KafkaError, OSError, TimeoutError):
            return False
        return True

    async def readiness(self) -> dict[str, bool]:
        """``consumer_running``, and once it runs ``broker_reachable`` and ``making_progress``."""
        checks = {"consumer_running": self.running}
        if self.running:
            checks["broker_reachable"] = await self.broker_reachable()
            checks["making_progress"] = not self.stuck()
        return checks
