"""The feedback app factory: ``create_app(settings)``; the lifespan opens the database, the
registry, the producer, the consumer loop and the refresh loop, and closes them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.feedback import api
from services.feedback.consumer import FeedbackConsumer
from services.feedback.metrics import FeedbackMetrics
from services.feedback.repository import FeedbackStore
from services.feedback.retraining import FeedbackMonitor
from services.feedback.service import ReportService
from services.feedback.settings import FeedbackSettings
from services.feedback.tables import SCHEMA
from shared.db.schema_check import SchemaCheck
from shared.db.session import make_engine
from shared.http.instrument import instrument
from shared.http.lifespan import BackgroundTasks
from shared.http.readiness import Check, Readiness
from shared.kafka import BackgroundProducer, Publisher
from shared.observability.health import probes_router
from shared.observability.metrics import service_registry
from shared.ratelimit import TokenBuckets
from shared.registry import ModelRegistry
from shared.registry.tables import SCHEMA as REGISTRY_SCHEMA
from shared.security import ApiKeys
from shared.version import __version__

log = structlog.get_logger("services.feedback")
T = TypeVar("T")


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
    metrics = FeedbackMetrics(service_registry(metrics_registry))
    holder: dict[str, FeedbackState] = {}
    schema = SchemaCheck(SCHEMA, REGISTRY_SCHEMA)  # its tables, and the registry it reads

    async def database() -> bool:
        state = holder.get("state")
        if state is None:
            return False
        await asyncio.to_thread(state.store.ping)
        return True

    async def broker() -> bool:
        state = holder.get("state")
        if state is None:
            return False
        connected = not isinstance(state.publisher, BackgroundProducer) or state.publisher.connected
        return connected and (state.consumer is None or state.consumer.connected)

    async def making_progress() -> bool:
        state = holder.get("state")
        return (
            state is not None and state.consumer is not None and not state.consumer.worker.stuck()
        )

    async def broker_reachable() -> bool:
        # Cut off from the broker, the consumer fetches nothing, so its lag (from the
        # fetches' highwater) never grows and "making progress" alone stays true.
        state = holder.get("state")
        return (
            state is not None
            and state.consumer is not None
            and await state.consumer.worker.broker_reachable()
        )

    def checks() -> dict[str, Check]:
        now: dict[str, Check] = {"database": database, "broker": broker, "schema": schema}
        state = holder.get("state")
        if state is not None and state.consumer is not None and state.consumer.connected:
            now["making_progress"] = making_progress  # only while the consumer runs
            now["broker_reachable"] = broker_reachable
        return now

    readiness = Readiness(checks, timeout_seconds=2.0)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await schema.attach(engine)  # says at once what to run if unmigrated
        loops = BackgroundTasks("feedback", settings.feedback_shutdown_timeout_seconds)
        own_publisher = (
            BackgroundProducer(
                settings,
                name="feedback-producer",
                service="feedback",
                produce_timeout_seconds=settings.feedback_produce_timeout_seconds,
                connect_backoff_max_seconds=settings.feedback_connect_backoff_max_seconds,
            )
            if publisher is None
            else None
        )
        try:
            registry = ModelRegistry(engine, settings.registry_dir, settings.model_name)
            store = FeedbackStore(engine, settings.approved_tags)
            if own_publisher is not None:
                await own_publisher.start()
            chosen: Publisher = own_publisher if own_publisher is not None else publisher  # type: ignore[assignment]
            buckets = TokenBuckets(
                per_second=settings.feedback_rate_limit_per_minute / 60.0,
                burst=settings.feedback_rate_limit_burst,
                unit="reports",
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
                loops.start(consumer.run, "feedback-consumer")
            if monitor:
                loops.start(refresher.run, "feedback-monitor")
            log.info("feedback_started", port=settings.feedback_port)
            yield
        finally:
            holder.pop("state", None)
            await loops.close()
            state_now = getattr(app.state, "feedback", None)
            if state_now is not None and state_now.monitor.running:
                # The monitor did not stop in time to end its training process.
                log.warning("feedback_stopping_during_retraining")
            if own_publisher is not None:
                await own_publisher.stop()
            engine.dispose()

    app = FastAPI(
        title="tagstream feedback",
        version=__version__,
        summary="Gold labels, online accuracy, drift and retraining.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.api_keys = ApiKeys.from_secrets(settings.feedback_api_keys)
    app.include_router(api.router)
    app.include_router(probes_router(readiness, metrics.registry))
    instrument(app, "feedback", metrics.registry)
    api.install_error_handlers(app, retry_after_seconds=settings.feedback_retry_after_seconds)
    return app
