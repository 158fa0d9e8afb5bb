"""The feedback app factory: ``create_app(settings)``; the lifespan opens the database, the
registry, the producer, the consumer loop and the refresh loop, and closes them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.feedback import api
from services.feedback.consumer import FeedbackConsumer
from services.feedback.metrics import FeedbackMetrics
from services.feedback.repository import FeedbackStore
from services.feedback.retraining import FeedbackMonitor
from services.feedback.service import (
    BrokerUnavailable,
    Publisher,
    ReportService,
    TokenBuckets,
)
from services.feedback.settings import FeedbackSettings
from services.feedback.tables import SCHEMA
from shared.db.schema_check import SchemaCheck
from shared.db.session import make_engine
from shared.kafka import create_producer
from shared.observability.health import probes_router
from shared.observability.logging import RequestIdMiddleware
from shared.registry import ModelRegistry
from shared.registry.tables import SCHEMA as REGISTRY_SCHEMA
from shared.security import ApiKeys

log = structlog.get_logger("services.feedback")
T = TypeVar("T")


class KafkaPublisher:
    """A producer that connects in the background; sends wait for the broker's ack."""

    def __init__(self, settings: FeedbackSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="feedback-producer-connect")

    async def _connect(self) -> None:
        delay = 0.1
        while True:
            producer = create_producer(self._settings)
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                await producer.stop()
                log.warning("producer_connect_failed", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._producer = producer
            return

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("the producer is not connected to the broker yet")
        timeout = self._settings.feedback_produce_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                await (await producer.send(topic, value, key=key))
        except TimeoutError:
            raise BrokerUnavailable(f"no acknowledgement within {timeout:g} s") from None
        except KafkaError as exc:
            raise BrokerUnavailable(f"broker error: {type(exc).__name__}") from exc

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class StorePredictions:
    """``PredictionLookup`` on the store, off the event loop."""

    def __init__(self, store: FeedbackStore) -> None:
        self._store = store

    async def latest_prediction(self, item_id: str) -> tuple[str, str | None] | None:
        return await asyncio.to_thread(self._store.latest_prediction, item_id)


@dataclass(frozen=True)
class FeedbackState:
    """What the lifespan opened, on ``app.state.feedback`` while the app runs."""

    engine: Engine
    store: FeedbackStore
    registry: ModelRegistry
    reports: ReportService
    monitor: FeedbackMonitor
    consumer: FeedbackConsumer | None
    publisher: Publisher

    async def run_blocking(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(function, *args, **kwargs)


def create_app(
    settings: FeedbackSettings,
    *,
    metrics_registry: CollectorRegistry | None = None,
    publisher: Publisher | None = None,
    consume: bool = True,
    monitor: bool = True,
) -> FastAPI:
    """The feedback service. ``publisher`` replaces the Kafka producer (tests); ``consume``
    and ``monitor`` turn the consumer and the refresh loop off (tests drive them)."""
    metrics = FeedbackMetrics(metrics_registry or CollectorRegistry())
    holder: dict[str, FeedbackState] = {}
    schema = SchemaCheck(SCHEMA, REGISTRY_SCHEMA)  # its tables, and the registry it reads

    async def readiness() -> Mapping[str, bool]:
        state = holder.get("state")
        if state is None:
            return {"database": False, "broker": False, "schema": False}
        try:
            await asyncio.wait_for(asyncio.to_thread(state.store.ping), 2.0)
            database = True
        except Exception:
            database = False
        broker = not isinstance(state.publisher, KafkaPublisher) or state.publisher.connected
        if state.consumer is not None:
            broker = broker and state.consumer.connected
        return {"database": database, "broker": broker, "schema": await schema()}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await schema.attach(engine)  # says at once what to run if unmigrated
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        own_publisher = KafkaPublisher(settings) if publisher is None else None
        try:
            registry = ModelRegistry(engine, settings.registry_dir, settings.model_name)
            store = FeedbackStore(engine, settings.approved_tags)
            if own_publisher is not None:
                await own_publisher.start()
            chosen: Publisher = own_publisher if own_publisher is not None else publisher  # type: ignore[assignment]
            buckets = TokenBuckets(
                per_minute=settings.feedback_rate_limit_per_minute,
                burst=settings.feedback_rate_limit_burst,
            )
            reports = ReportService(
                publisher=chosen,
                predictions=StorePredictions(store),
                topic=settings.topic_feedback,
                approved_tags=settings.approved_tags,
                buckets=buckets,
            )
            refresher = FeedbackMonitor(settings, store, registry, metrics)
            consumer = FeedbackConsumer(settings, store, metrics) if consume else None
            state = FeedbackState(engine, store, registry, reports, refresher, consumer, chosen)
            app.state.feedback = state
            holder["state"] = state
            if consumer is not None:
                tasks.append(asyncio.create_task(consumer.run(stop), name="feedback-consumer"))
            if monitor:
                tasks.append(asyncio.create_task(refresher.run(stop), name="feedback-monitor"))
            log.info("feedback_started", port=settings.feedback_port)
            yield
        finally:
            holder.pop("state", None)
            stop.set()
            if tasks:
                _done, pending = await asyncio.wait(
                    tasks, timeout=settings.feedback_shutdown_timeout_seconds
                )
                for task in pending:
                    task.cancel()
            state_now = getattr(app.state, "feedback", None)
            if state_now is not None and state_now.monitor.running:
                # A training thread cannot be interrupted; its run row stays "running".
                log.warning("feedback_stopping_during_retraining")
            if own_publisher is not None:
                await own_publisher.stop()
            engine.dispose()

    app = FastAPI(
        title="tagstream feedback",
        version="1.0.0",
        summary="Gold labels, online accuracy, drift and retraining.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.api_keys = ApiKeys.from_secrets(settings.feedback_api_keys)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(api.router)
    app.include_router(probes_router(readiness, metrics.registry))
    api.install_error_handlers(app, retry_after_seconds=settings.feedback_retry_after_seconds)
    return app
