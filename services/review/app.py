"""The review app factory: ``create_app(settings)``; the lifespan opens the database and
runs the review.requests consumer, the outbox relay and the queue gauges."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.review import api, web
from services.review.consumer import ReviewConsumer
from services.review.database import ReviewDatabase
from services.review.metrics import ReviewMetrics
from services.review.outbox import OutboxRelay
from services.review.service import ReviewPolicy, review_stats
from services.review.settings import ReviewSettings
from services.review.tables import SCHEMA
from shared.db.schema_check import SchemaCheck
from shared.db.session import make_engine
from shared.kafka import create_producer, ensure_topics
from shared.observability.health import probes_router
from shared.observability.logging import RequestIdMiddleware
from shared.stopping import sleep_or_stop

log = structlog.get_logger("services.review")


def policy_from(settings: ReviewSettings, metrics: ReviewMetrics | None) -> ReviewPolicy:
    return ReviewPolicy(
        approved_tags=settings.approved_tags,
        lease=timedelta(seconds=settings.review_lease_seconds),
        undo_window=timedelta(seconds=settings.review_undo_window_seconds),
        priority=settings.review_priority,
        labels_per_item=settings.review_labels_per_item,
        feedback_topic=settings.topic_feedback,
        metrics=metrics,
    )


def create_app(
    settings: ReviewSettings,
    registry: CollectorRegistry | None = None,
    *,
    run_kafka: bool = True,
) -> FastAPI:
    """The review API and web UI. ``run_kafka=False`` (tests) serves HTTP only."""
    metrics = ReviewMetrics(registry if registry is not None else CollectorRegistry())
    consumer_box: dict[str, ReviewConsumer] = {}
    schema = SchemaCheck(SCHEMA)

    async def readiness() -> Mapping[str, bool]:
        database: ReviewDatabase | None = getattr(app.state, "review_db", None)
        checks = {"database": database is not None and await _ping(database)}
        checks["schema"] = await schema()
        if run_kafka:
            consumer = consumer_box.get("consumer")
            checks["consumer_running"] = consumer is not None and consumer.running
        return checks

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await schema.attach(engine)  # says at once what to run if unmigrated
        database = ReviewDatabase.open(engine, policy_from(settings, metrics))
        app.state.review_db = database
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_gauges(database, metrics, settings, stop))]
        producer = create_producer(settings) if run_kafka else None
        try:
            if producer is not None:
                with contextlib.suppress(Exception):
                    await ensure_topics(
                        settings,
                        (settings.topic_review, settings.topic_feedback, settings.topic_dlq),
                    )
                await producer.start()
                consumer = ReviewConsumer(settings, database, metrics)
                consumer_box["consumer"] = consumer
                relay = OutboxRelay(
                    database,
                    producer,
                    metrics,
                    batch=settings.review_outbox_batch,
                    poll_seconds=settings.review_outbox_poll_seconds,
                )
                tasks += [
                    asyncio.create_task(consumer.run(stop), name="review-consumer"),
                    asyncio.create_task(relay.run(stop), name="review-outbox"),
                ]
            log.info("review_started", port=settings.review_port, kafka=run_kafka)
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if producer is not None:
                await producer.stop()
            engine.dispose()
            log.info("review_stopped")

    app = FastAPI(
        title="tagstream review",
        version="1.0.0",
        summary="Reviewers claim unsure items and label them; labels go to feedback.labels.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.settings = settings
    app.add_middleware(RequestIdMiddleware)
    app.include_router(api.router)
    app.include_router(web.router)
    app.include_router(probes_router(readiness, metrics.registry))
    api.install_error_handlers(app)
    return app


async def _ping(database: ReviewDatabase) -> bool:
    def select_one(session: Session) -> None:
        session.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(asyncio.to_thread(database.run, select_one), timeout=1.0)
    except Exception:
        return False
    return True


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
