"""The ingest app factory: ``create_app(settings)``; the lifespan opens and closes the
database engine and the producer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from services.ingest import api
from services.ingest.admission import Admission
from services.ingest.metrics import IngestMetrics
from services.ingest.middleware import BodySizeLimitMiddleware
from services.ingest.repository import SqlDedupStore
from services.ingest.service import IngestService
from services.ingest.settings import IngestSettings
from services.ingest.tables import SCHEMA
from services.ingest.validation import ItemLimits
from shared.db.schema_check import SchemaCheck
from shared.db.session import make_engine
from shared.http.instrument import instrument
from shared.http.readiness import Readiness
from shared.kafka import BackgroundProducer
from shared.observability.health import probes_router
from shared.observability.metrics import service_registry
from shared.ratelimit import TokenBuckets
from shared.security import ApiKeys
from shared.version import __version__


@dataclass(frozen=True)
class IngestState:
    """What the lifespan opened, on ``app.state.ingest`` while the app runs."""

    engine: Engine
    store: SqlDedupStore
    publisher: BackgroundProducer
    service: IngestService


def admission(settings: IngestSettings, metrics: IngestMetrics) -> Admission:
    """The per-key rate limit and the bound on items in flight, as configured."""
    rate = settings.ingest_rate_limit_items_per_second
    buckets = (
        TokenBuckets(per_second=rate, burst=settings.ingest_rate_limit_burst_items, unit="items")
        if rate
        else None
    )
    return Admission(
        buckets=buckets,
        max_in_flight=settings.ingest_max_in_flight_items,
        retry_after_seconds=settings.ingest_overload_retry_after_seconds,
        metrics=metrics,
    )


def create_app(
    settings: IngestSettings, *, metrics_registry: CollectorRegistry | None = None
) -> FastAPI:
    """The ingest API. ``metrics_registry`` receives the metrics (a fresh one by default)."""
    metrics = IngestMetrics(service_registry(metrics_registry))
    holder: dict[str, IngestState] = {}
    schema = SchemaCheck(SCHEMA)

    async def database() -> bool:
        state = holder.get("state")
        return state is not None and await state.store.ping()

    async def broker() -> bool:
        state = holder.get("state")
        return state is not None and await state.publisher.reachable()

    # cached briefly so probes cannot load the database or the broker
    readiness = Readiness(
        {"database": database, "broker": broker, "schema": schema},
        timeout_seconds=settings.ingest_readiness_timeout_seconds,
        cache_seconds=settings.ingest_readiness_cache_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await schema.attach(engine)  # says at once what to run if unmigrated
        publisher = BackgroundProducer(
            settings,
            name="ingest-producer",
            service="ingest",
            produce_timeout_seconds=settings.ingest_produce_timeout_seconds,
            connect_backoff_max_seconds=settings.ingest_connect_backoff_max_seconds,
            readiness_timeout_seconds=settings.ingest_readiness_timeout_seconds,
        )
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
                admission=admission(settings, metrics),
            )
            state = IngestState(engine=engine, store=store, publisher=publisher, service=service)
            app.state.ingest = state
            holder["state"] = state
            readiness.forget()
            yield
        finally:
            holder.pop("state", None)
            readiness.forget()
            await publisher.stop()
            engine.dispose()

    app = FastAPI(
        title="tagstream ingest",
        version=__version__,
        summary="Scrapers post content items; accepted items go to content.raw.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.api_keys = ApiKeys.from_secrets(settings.ingest_api_keys)
    app.include_router(api.router)
    app.include_router(probes_router(readiness, metrics.registry))
    api.install_error_handlers(app, retry_after_seconds=settings.ingest_retry_after_seconds)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.ingest_max_body_bytes, metrics=metrics
    )
    # Outside the cap: its 413s are counted, traced and carry the request id too.
    instrument(app, "ingest", metrics.registry, observers=[metrics.count_request])
    return app
