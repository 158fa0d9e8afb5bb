"""The classifier's Kafka side: wait for a model, then run the commit-after-ack batch loop.

``ClassifierRunner.run(stop)`` is the whole life of the consumer: it waits until the
registry has a stable model, then runs the shared consumer worker (connect, backoff,
rewind, commit-after-ack batches, lag and progress for ``/readyz``) with
``classify_batch`` as its handler (in a worker thread, so heartbeats keep flowing), swaps
models between batches, and on ``stop`` finishes the in-flight batch, commits, and
leaves the group. What is the classifier's own here: the model, its watchers, the
handler and the per-batch metrics.

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
from aiokafka.errors import KafkaError

from services.classifier.metrics import ClassifierMetrics
from services.classifier.model import CascadeOptions, LoadedModel, ServingSet, load_serving
from services.classifier.service import BatchResult, Routing, classify_batch
from services.classifier.settings import ClassifierSettings
from shared.kafka import ConsumerWorker, Output, WorkerConfig, create_consumer
from shared.kafka.backoff import Backoff
from shared.kafka.batch import Record
from shared.kafka.topics import MODELS, RAW
from shared.registry import ModelRegistry
from shared.stopping import sleep_or_stop

log = structlog.get_logger("services.classifier")

T = TypeVar("T")
RegistryFactory = Callable[[ClassifierSettings], ModelRegistry]
NO_MODEL_LOG_EVERY_SECONDS = 60.0
# One produce batch per partition holds a whole micro-batch of outputs (default 16 KiB
# split it into dozens of requests); stays under the broker's 1 MB message limit.
PRODUCER_BATCH_BYTES = 512 * 1024


def open_registry(settings: ClassifierSettings) -> ModelRegistry:
    return ModelRegistry.open(settings)


def worker_config(settings: ClassifierSettings) -> WorkerConfig:
    """The classifier's consumer group on ``content.raw``."""
    s = settings
    return WorkerConfig(
        name="classifier",
        topics=(RAW.name(s),),
        group_id=s.classifier_group_id,
        max_records=s.classifier_batch_max_items,
        max_wait_ms=s.classifier_batch_max_wait_ms,
        backoff_max_seconds=s.classifier_retry_backoff_max_seconds,
        stuck_after_seconds=s.classifier_stuck_after_seconds,
        consumer_options={
            "session_timeout_ms": s.classifier_session_timeout_ms,
            "heartbeat_interval_ms": s.classifier_heartbeat_interval_ms,
            "fetch_max_wait_ms": s.classifier_fetch_max_wait_ms,
        },
        producer_options={"max_batch_size": PRODUCER_BATCH_BYTES},
    )


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
        self._backoff = Backoff(settings.classifier_retry_backoff_max_seconds)
        self._in_flight: tuple[ServingSet, BatchResult, float] | None = None
        self.worker = ConsumerWorker(
            settings,
            worker_config(settings),
            # late-bound, so the handler can be wrapped after construction (tests do)
            lambda records: self._handle(records),
            on_batch=self._committed,
            on_error=lambda stage: self.metrics.errors.labels(stage).inc(),
            on_lag=self.metrics.set_lag,
            on_assign=lambda partitions: self.metrics.rebalances.inc(),
        )

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
                await self.worker.run(stop)
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
            consumer = create_consumer(s, MODELS.name(s), group_id=None, auto_offset_reset="latest")
            try:
                await consumer.start()
                while not stop.is_set():
                    batch = await consumer.getmany(timeout_ms=500)
                    if any(batch.values()):
                        log.info("model_event_received", records=sum(map(len, batch.values())))
                        self._model_changed.set()
            except KafkaError as exc:
                log.warning("model_events_unavailable", error=repr(exc))
                await sleep_or_stop(stop, self._backoff.next())
            finally:
                with contextlib.suppress(KafkaError):
                    await consumer.stop()

    async def _refresh_model(self) -> bool:
        """Load the registry's traffic split if it changed; True when a model is loaded."""
        assert self._registry is not None
        try:
            cascade = CascadeOptions(self.settings.cascade_enabled, self.settings.cascade_threads)
            loaded = await asyncio.to_thread(load_serving, self._registry, self.serving, cascade)
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
                await sleep_or_stop(stop, self._backoff.next())
            else:
                self._backoff.reset()
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
            stage2_items=sum(m.stage2_items for m in result.models),
        )

    # -- health ----------------------------------------------------------------------

    async def readiness(self) -> dict[str, bool]:
        """The /readyz checks; only the ones that apply at this stage of start-up."""
        return {"model_loaded": self.model is not None, **await self.worker.readiness()}
