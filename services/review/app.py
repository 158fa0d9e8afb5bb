"""The review app factory: ``create_app(settings)``; the lifespan opens the database and
runs the review.requests consumer, the outbox relay and the queue gauges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.review import api, web, web_admin
from services.review.consumer import ReviewConsumer
from services.review.database import ReviewDatabase
from services.review.metrics import ReviewMetrics
from services.review.outbox import OutboxRelay
from services.review.service import ReviewPolicy, review_stats
from services.review.settings import ReviewSettings
from services.review.tables import SCHEMA
from shared.db.schema_check import SchemaCheck
from shared.db.session import make_engine
from shared.http.instrument import instrument
from shared.http.lifespan import BackgroundTasks
from shared.http.readiness import Check, Readiness
from shared.kafka import create_producer
from shared.observability.health import probes_router
from shared.observability.metrics import service_registry
from shared.stopping import sleep_or_stop
from shared.version import __version__

log = structlog.get_logger("services.review")


def policy_from(settings: ReviewSettings, metrics: ReviewMetrics | None) -> ReviewPolicy:
    return ReviewPolicy(
        approved_tags=settings.approved_tags,
        lease=timedelta(seconds=settings.review_lease_seconds),
        undo_window=timedelta(seconds=settings.review_undo_window_seconds),
        priority=settings.review_priority,
        labels_per_item=settings.review_labels_per_item,
        feedback_topic=settings.topic_feedback,
        decisions_topic=settings.topic_classified,
        metrics=metrics,
    )


def create_app(
    settings: ReviewSettings,
    *,
    metrics_registry: CollectorRegistry | None = None,
    run_kafka: bool = True,
) -> FastAPI:
    """The review API and web UI. ``metrics_registry`` receives the metrics (a fresh one by
    default); ``run_kafka=False`` (tests) serves HTTP only."""
    metrics = ReviewMetrics(service_registry(metrics_registry))
    consumer_box: dict[str, ReviewConsumer] = {}
    schema = SchemaCheck(SCHEMA)

    async def database_reachable() -> bool:
        database: ReviewDatabase | None = getattr(app.state, "review_db", None)
        if database is None:
            return False
        await asyncio.to_thread(database.run, _select_one)
        return True

    async def consumer_running() -> bool:
        consumer = consumer_box.get("consumer")
        return consumer is not None and consumer.running

    async def making_progress() -> bool:
        consumer = consumer_box.get("consumer")
        return consumer is not None and not consumer.worker.stuck()

    async def broker_reachable() -> bool:
        # Cut off from the broker, the consumer fetches nothing, so its lag (from the
        # fetches' highwater) never grows and "making progress" alone stays true.
        consumer = consumer_box.get("consumer")
        return consumer is not None and await consumer.worker.broker_reachable()

    def checks() -> dict[str, Check]:
        now: dict[str, Check] = {"database": database_reachable, "schema": schema}
        if run_kafka:
            now["consumer_running"] = consumer_running
            consumer = consumer_box.get("consumer")
            if consumer is not None and consumer.running:
                now["making_progress"] = making_progress  # only while the consumer runs
                now["broker_reachable"] = broker_reachable
        return now

    readiness = Readiness(checks, timeout_seconds=1.0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await schema.attach(engine)  # says at once what to run if unmigrated
        database = ReviewDatabase.open(engine, policy_from(settings, metrics))
        app.state.review_db = database
        loops = BackgroundTasks("review")
        loops.start(lambda stop: _gauges(database, metrics, settings, stop), "review-gauges")
        producer = create_producer(settings) if run_kafka else None
        try:
            if producer is not None:
                await producer.start()
                consumer = ReviewConsumer(settings, database, metrics)
                consumer_box["consumer"] = consumer
                relay = OutboxRelay(
                    database,
                    producer,
                    metrics,
                    batch=settings.review_outbox_batch,
                    poll_seconds=settings.review_outbox_poll_seconds,
                    decisions_topic=settings.topic_classified,
                )
                loops.start(consumer.run, "review-consumer")
                loops.start(relay.run, "review-outbox")
            log.info("review_started", port=settings.review_port, kafka=run_kafka)
            yield
        finally:
            await loops.close()
            if producer is not None:
                await producer.stop()
            engine.dispose()
            log.info("review_stopped")

    app = FastAPI(
        title="tagstream review",
        version=__version__,
        summary="Reviewers claim unsure items and label them; labels go to feedback.labels "
        "and, as human decisions, to content.classified.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.settings = settings
    app.include_router(api.router)
    app.include_router(web.router)
    app.include_router(web_admin.router)
    app.include_router(probes_router(readiness, metrics.registry))
    instrument(app, "review", metrics.registry)
    api.install_error_handlers(app)
    return app


def _select_one(session: Session) -> None:
    session.execute(text("SELECT 1"))


async def _gauges(
    database: ReviewDatabase, metrics: ReviewMetrics, settings: ReviewSettings, stop: asyncio.Event
) -> None:
    """Refresh the queue and reviewer gauges every ``review_gauge_refresh_seconds``."""
    while not stop.is_set():
        try:
            stats = await asyncio.to_thread(database.run, review_stats, datetime.now(UTC))
            metrics.queue_depth.set(stats.queue_depth)
            metrics.oldest_age.set(stats.oldest_pending_age_seconds or 0.0)
            metrics.reviewers.set(len(stats.labels_per_reviewer))
            metrics.doubly_labeled.set(stats.doubly_labeled_items)
            if stats.agreement is not None:
                metrics.agreement.set(stats.agreement)
        except Exception as exc:
            log.warning("review_gauges_failed", error=repr(exc))
        await sleep_or_stop(stop, settings.review_gauge_refresh_seconds)
