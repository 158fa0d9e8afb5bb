"""The classifier's Kafka side: wait for a model, then run the commit-after-ack batch loop.

``ClassifierRunner.run(stop)`` is the whole life of the consumer: it waits until the
registry has a stable model, starts the producer and the consumer group, runs
``run_batches`` with ``classify_batch`` (in a worker thread, so heartbeats keep flowing),
swaps models between batches, watches lag and progress for ``/readyz``, and on ``stop``
finishes the in-flight batch, commits, and leaves the group.

Model changes (a canary started, its weight changed, promoted, rolled back) are read
from the registry's traffic split. A message on ``models.events`` makes every instance
re-read it at once; a slow poll of the registry covers a missed event. Each batch takes
one snapshot of the serving set, so it is decided wholly by the models active when it
started, and no item is dropped or decided twice by a switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from services.classifier.metrics import ClassifierMetrics
from services.classifier.model import LoadedModel, ServingSet, load_serving
from services.classifier.service import BatchResult, Routing, classify_batch
from services.classifier.settings import ClassifierSettings
from shared.kafka import Output, create_consumer, create_producer, ensure_topics, run_batches
from shared.kafka.batch import Record
from shared.registry import ModelRegistry
from shared.stopping import sleep_or_stop

log = structlog.get_logger("services.classifier")

T = TypeVar("T")
RegistryFactory = Callable[[ClassifierSettings], ModelRegistry]
LAG_INTERVAL_SECONDS = 1.0
BROKER_CHECK_TIMEOUT_SECONDS = 2.0
NO_MODEL_LOG_EVERY_SECONDS = 60.0
# One produce batch per partition holds a whole micro-batch of outputs (default 16 KiB
# split it into dozens of requests); stays under the broker's 1 MB message limit.
PRODUCER_BATCH_BYTES = 512 * 1024


def open_registry(settings: ClassifierSettings) -> ModelRegistry:
    return ModelRegistry.open(settings)


class _Offsets(ConsumerRebalanceListener):
    """Committed offsets of the partitions held (the base of lag), kept across rebalances."""

    def __init__(self) -> None:
        self.consumer: AIOKafkaConsumer | None = None
        self.committed: dict[TopicPartition, int] = {}

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self.committed.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions_assigned", partitions=sorted(tp.partition for tp in assigned))
        if self.consumer is None:
            return
        for tp in assigned:
            try:
                offset = await asyncio.wait_for(self.consumer.committed(tp), timeout=2.0)
            except (KafkaError, TimeoutError):
                continue  # update_lag falls back to the position
            # No commit yet: a new group starts at the beginning (auto_offset_reset).
            self.committed[tp] = offset or 0

    def record(self, records: Sequence[Record]) -> None:
        held = self.consumer.assignment() if self.consumer is not None else set()
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp in held:
                self.committed[tp] = max(self.committed.get(tp, 0), record.offset + 1)


class ClassifierRunner:
    """One instance's consumer: model, clients, batch loop and health state."""

    def __init__(
        self,
        settings: ClassifierSettings,
        metrics: ClassifierMetrics,
        *,
        registry_factory: RegistryFactory = open_registry,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.routing = Routing.from_settings(settings)
        self.serving: ServingSet | None = None
        self._model_changed = asyncio.Event()
        self._registry_factory = registry_factory
        self._registry: ModelRegistry | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets = _Offsets()
        self._lag: dict[int, int] = {}
        self._last_progress = time.monotonic()
        self._backoff = 0.1
        self._in_flight: tuple[ServingSet, BatchResult, float] | None = None

    @property
    def model(self) -> LoadedModel | None:
        """The stable model being served, if any."""
        return self.serving.stable if self.serving is not None else None

    # -- life cycle ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; failures are retried, never fatal."""
        try:
            self._registry = await self._retry(stop, "registry", self._open_registry)
            if self._registry is None:
                return
            if await self._wait_for_model(stop) is None:
                return
            watcher = asyncio.create_task(self._watch_model(stop), name="classifier-model")
            events = asyncio.create_task(self._watch_events(stop), name="classifier-events")
            try:
                while not stop.is_set():
                    try:
                        await self._consume(stop)
                    except Exception as exc:
                        self.metrics.errors.labels("consumer").inc()
                        log.exception("consumer_failed_restarting", error=str(exc))
                        await sleep_or_stop(stop, self._next_backoff())
            finally:
                for task in (watcher, events):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            if self._registry is not None:
                self._registry.close()

    async def _open_registry(self) -> ModelRegistry:
        return await asyncio.to_thread(self._registry_factory, self.settings)

    async def _wait_for_model(self, stop: asyncio.Event) -> ServingSet | None:
        last_log = -NO_MODEL_LOG_EVERY_SECONDS
        while not stop.is_set():
            if await self._refresh_model():
                return self.serving
            if time.monotonic() - last_log >= NO_MODEL_LOG_EVERY_SECONDS:
                last_log = time.monotonic()
                log.warning(
                    "no_stable_model",
                    model_name=self.settings.model_name,
                    registry_dir=str(self.settings.registry_dir),
                    hint="not consuming until a model is registered: run `tagstream model train`",
                )
            await sleep_or_stop(stop, self.settings.classifier_model_poll_seconds)
        return None

    async def _watch_model(self, stop: asyncio.Event) -> None:
        """Re-read the traffic split on every models.events message, and every poll."""
        poll = self.settings.classifier_model_poll_seconds
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._model_changed.wait(), timeout=poll)
            self._model_changed.clear()
            if not stop.is_set():
                await self._refresh_model()

    async def _watch_events(self, stop: asyncio.Event) -> None:
        """Listen to models.events (every instance sees every event: no consumer group).

        The events are notifications; the registry is the truth, so a malformed or
        missed event costs nothing but the wait for the next poll.
        """
        s = self.settings
        while not stop.is_set():
            consumer = create_consumer(s, s.topic_models, group_id=None, auto_offset_reset="latest")
            try:
                await consumer.start()
                while not stop.is_set():
                    batch = await consumer.getmany(timeout_ms=500)
                    if any(batch.values()):
                        log.info("model_event_received", records=sum(map(len, batch.values())))
                        self._model_changed.set()
            except KafkaError as exc:
                log.warning("model_events_unavailable", error=repr(exc))
                await sleep_or_stop(stop, self._next_backoff())
            finally:
                with contextlib.suppress(KafkaError):
                    await consumer.stop()

    async def _refresh_model(self) -> bool:
        """Load the registry's traffic split if it changed; True when a model is loaded."""
        assert self._registry is not None
        try:
            loaded = await asyncio.to_thread(load_serving, self._registry, self.serving)
        except Exception as exc:
            self.metrics.errors.labels("model_load").inc()
            log.exception("model_load_failed", error=str(exc))
            return self.serving is not None
        if loaded is not None and loaded is not self.serving:
            previous, self.serving = self.serving, loaded
            self.metrics.serving(loaded, previous, self.settings.approved_tags)
            log.info(
                "models_switched",
                **loaded.describe(),
                previous=previous.describe() if previous else None,
                thresholds=loaded.stable.thresholds,
            )
        return self.serving is not None

    async def _consume(self, stop: asyncio.Event) -> None:
        """One consumer and producer for as long as they work."""
        s = self.settings
        with contextlib.suppress(KafkaError, OSError):
            # Declared topics in production may not be creatable by this client: fine.
            await ensure_topics(
                s,
                (
                    s.topic_raw,
                    s.topic_classified,
                    s.topic_review,
                    s.topic_dlq,
                    s.topic_shadow,
                    s.topic_models,
                ),
            )
        producer = create_producer(s, max_batch_size=PRODUCER_BATCH_BYTES)
        consumer = create_consumer(
            s,
            group_id=s.classifier_group_id,
            session_timeout_ms=s.classifier_session_timeout_ms,
            heartbeat_interval_ms=s.classifier_heartbeat_interval_ms,
            fetch_max_wait_ms=s.classifier_fetch_max_wait_ms,
        )
        self._offsets = _Offsets()
        self._offsets.consumer = consumer
        consumer.subscribe([s.topic_raw], listener=self._offsets)
        try:
            await producer.start()
            await consumer.start()
            self._consumer = consumer
            self._last_progress = time.monotonic()
            log.info("consumer_started", topic=s.topic_raw, group_id=s.classifier_group_id)
            monitor = asyncio.create_task(self._watch_lag(consumer, stop), name="classifier-lag")
            try:
                await self._batches(consumer, producer, stop)
            finally:
                monitor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await monitor
        finally:
            self._consumer = None
            # Leaving the group hands the partitions over at once, not after a timeout.
            await consumer.stop()
            await producer.stop()
            self.metrics.set_lag({}, ())
            log.info("consumer_stopped", group_id=s.classifier_group_id)

    async def _batches(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, stop: asyncio.Event
    ) -> None:
        s = self.settings
        while not stop.is_set():
            try:
                await run_batches(
                    consumer,
                    producer,
                    self._handle,
                    max_records=s.classifier_batch_max_items,
                    max_wait_ms=s.classifier_batch_max_wait_ms,
                    stop=stop,
                    on_batch=self._committed,
                )
            except KafkaError as exc:
                # Outputs not acknowledged (broker down or slow): nothing was committed.
                # Rewind to the committed offsets so the batch is processed again.
                self.metrics.errors.labels("produce").inc()
                log.warning("batch_failed_retrying", error=repr(exc))
                await sleep_or_stop(stop, self._next_backoff())
                await self._rewind(consumer)

    async def _rewind(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    def _next_backoff(self) -> float:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.settings.classifier_retry_backoff_max_seconds)
        return delay

    async def _retry(
        self, stop: asyncio.Event, what: str, attempt: Callable[[], Awaitable[T]]
    ) -> T | None:
        """``attempt()`` until it succeeds or ``stop`` is set (then None)."""
        while not stop.is_set():
            try:
                result = await attempt()
            except Exception as exc:
                self.metrics.errors.labels(what).inc()
                log.exception("dependency_unavailable_retrying", dependency=what, error=str(exc))
                await sleep_or_stop(stop, self._next_backoff())
            else:
                self._backoff = 0.1
                return result
        return None

    # -- one batch -------------------------------------------------------------------

    async def _handle(self, records: Sequence[Record]) -> Sequence[Output]:
        serving = self.serving  # one snapshot decides the whole batch
        assert serving is not None  # the loop starts only once a model is loaded
        started = time.perf_counter()
        # Decoding, text preparation and inference are CPU work: off the event loop, so
        # heartbeats, fetches and probes keep being served.
        result = await asyncio.to_thread(classify_batch, records, serving, self.routing)
        self._in_flight = (serving, result, started)
        return result.outputs

    def _committed(self, records: Sequence[Record], outputs: Sequence[Output]) -> None:
        """After the batch's outputs were acknowledged and its offsets committed."""
        assert self._in_flight is not None
        serving, result, started = self._in_flight
        self._in_flight = None
        seconds = time.perf_counter() - started
        self._offsets.record(records)
        self._last_progress = time.monotonic()
        self._backoff = 0.1
        self.metrics.record_batch(len(records), result, seconds)
        for rejected in result.rejected:
            log.warning(
                "record_dead_lettered",
                item_id=rejected.item_id,
                stage=rejected.stage,
                reason=rejected.reason,
                partition=rejected.partition,
                offset=rejected.offset,
            )
        review = sum(1 for d in result.decided if d.route == "review")
        log.info(
            "batch_committed",
            size=len(records),
            decided=len(result.decided),
            review=review,
            dead_lettered=len(result.rejected),
            duration_ms=round(seconds * 1000, 2),
            inference_ms=round(result.inference_seconds * 1000, 2),
            model_version=serving.stable.name,
            canary_version=serving.canary.name if serving.canary else None,
            canary_decided=sum(1 for d in result.decided if d.role == "canary"),
        )

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
        self.metrics.set_lag(lag, (tp.partition for tp in assigned))
        return lag

    def stuck(self) -> bool:
        """Records are waiting and nothing was committed for ``stuck_after_seconds``."""
        waited = time.monotonic() - self._last_progress
        return any(self._lag.values()) and waited > self.settings.classifier_stuck_after_seconds

    async def readiness(self) -> dict[str, bool]:
        """The /readyz checks; only the ones that apply at this stage of start-up."""
        checks = {"model_loaded": self.model is not None}
        consumer = self._consumer
        checks["consumer_running"] = consumer is not None
        if consumer is not None:
            checks["broker_reachable"] = await self._broker_reachable(consumer)
            checks["making_progress"] = not self.stuck()
        return checks

    @staticmethod
    async def _broker_reachable(consumer: AIOKafkaConsumer) -> bool:
        try:
            await asyncio.wait_for(consumer.topics(), timeout=BROKER_CHECK_TIMEOUT_SECONDS)
        except (KafkaError, OSError, TimeoutError):
            return False
        return True
