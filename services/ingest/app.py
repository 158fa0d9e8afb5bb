"""The ingest app factory: ``create_app(settings)``; the lifespan opens and closes the
database engine and the producer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.ingest import api
from services.ingest.auth import ApiKeys
from services.ingest.metrics import IngestMetrics
from services.ingest.middleware import BodySizeLimitMiddleware, RequestMetricsMiddleware
from services.ingest.publisher import KafkaPublisher
from services.ingest.repository import SqlDedupStore
from services.ingest.service import IngestService
from services.ingest.settings import IngestSettings
from services.ingest.tables import SCHEMA
from services.ingest.validation import ItemLimits
from shared.db.schema_check import SchemaCheck
from shared.db.session import make_engine
from shared.observability.health import probes_router
from shared.observability.logging import RequestIdMiddleware


@dataclass(frozen=True)
class IngestState:
    """What the lifespan opened, on ``app.state.ingest`` while the app runs."""

    engine: Engine
    store: SqlDedupStore
    publisher: KafkaPublisher
    service: IngestService


class Readiness:
    """Database migrated and reachable, broker reachable; cached briefly so probes cannot
    load either."""

    def __init__(self, settings: IngestSettings) -> None:
        self._timeout = settings.ingest_readiness_timeout_seconds
        self._ttl = settings.ingest_readiness_cache_seconds
        self._state: IngestState | None = None
        self._checked_at = float("-inf")
        self._checks: dict[str, bool] = {"database": False, "broker": False, "schema": False}
        self.schema = SchemaCheck(SCHEMA)
        self._lock = asyncio.Lock()

    def attach(self, state: IngestState | None) -> None:
        self._state = state
        self._checked_at = float("-inf")

    async def __call__(self) -> Mapping[str, bool]:
        async with self._lock:
            if time.monotonic() - self._checked_at >= self._ttl:
                self._checks = await self._check()
                self._checked_at = time.monotonic()
            return dict(self._checks)

    async def _check(self) -> dict[str, bool]:
        state = self._state
        if state is None:
            return {"database": False, "broker": False, "schema": False}
        database, broker, schema = await asyncio.gather(
            self._database(state), state.publisher.reachable(), self.schema()
        )
        return {"database": database, "broker": broker, "schema": schema}

    async def _database(self, state: IngestState) -> bool:
        try:
            return await asyncio.wait_for(state.store.ping(), self._timeout)
        except TimeoutError:
            return False


def create_app(settings: IngestSettings, registry: CollectorRegistry | None = None) -> FastAPI:
    """The ingest API. ``registry`` receives the metrics (a fresh one by default)."""
    metrics = IngestMetrics(registry if registry is not None else CollectorRegistry())
    readiness = Readiness(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await readiness.schema.attach(engine)  # says at once what to run if unmigrated
        publisher = KafkaPublisher(settings)
        try:
            await publisher.start()
            store = SqlDedupStore(engine)
            service = IngestService(
                store=store,
                publisher=publisher,
                topic=settings.topic_raw,
                limits=ItemLimits.from_settings(settings),
                max_batch_items=settings.ingest_max_batch_items,
                metrics=metrics,
            )
            state = IngestState(engine=engine, store=store, publisher=publisher, service=service)
            app.state.ingest = state
            readiness.attach(state)
            yield
        finally:
            readiness.attach(None)
            await publisher.stop()
            engine.dispose()

    app = FastAPI(
        title="tagstream ingest",
        version="1.0.0",
        summary="Scrapers post content items; accepted items go to content.raw.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.api_keys = ApiKeys.from_secrets(settings.ingest_api_keys)
    app.include_router(api.router)
    app.include_router(probes_router(readiness, metrics.registry))
    api.install_error_handlers(app, retry_after_seconds=settings.ingest_retry_after_seconds)
    # Added last = outermost: the counter also sees the cap's 413s.
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.ingest_max_body_bytes, metrics=metrics
    )
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    # Outermost: every log line of a request, the 413s included, carries its id.
    app.add_middleware(RequestIdMiddleware)
    return app
