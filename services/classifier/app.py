"""The classifier's process: a small HTTP app for probes and metrics around the batch loop.

``create_app(settings)`` builds it; the lifespan starts the consumer loop as a background
task and, on shutdown (SIGTERM via uvicorn), lets the in-flight batch finish, commit and
leave the consumer group before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.classifier.consumer import ClassifierRunner, RegistryFactory, open_registry
from services.classifier.metrics import ClassifierMetrics
from services.classifier.settings import ClassifierSettings
from shared.db.schema_check import SchemaCheck
from shared.db.session import make_engine
from shared.observability.health import probes_router
from shared.registry.tables import SCHEMA as REGISTRY_SCHEMA

log = structlog.get_logger("services.classifier")


def create_app(
    settings: ClassifierSettings,
    *,
    metrics_registry: CollectorRegistry | None = None,
    registry_factory: RegistryFactory = open_registry,
) -> FastAPI:
    """The app; nothing is opened until its lifespan starts."""
    metrics = ClassifierMetrics(metrics_registry or CollectorRegistry())
    runner = ClassifierRunner(settings, metrics, registry_factory=registry_factory)
    schema = SchemaCheck(REGISTRY_SCHEMA)  # the registry it serves from

    async def readiness() -> dict[str, bool]:
        return {**await runner.readiness(), "schema": await schema()}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await schema.attach(engine)  # says at once what to run if unmigrated
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop), name="classifier-runner")
        task.add_done_callback(_report_exit)
        log.info("classifier_starting", group_id=settings.classifier_group_id)
        try:
            yield
        finally:
            stop.set()
            timeout = settings.classifier_shutdown_timeout_seconds
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
            except TimeoutError:
                # Uncommitted records are re-delivered to whoever holds them next.
                log.error("classifier_shutdown_timed_out", timeout_seconds=timeout)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            engine.dispose()
            log.info("classifier_stopped")

    app = FastAPI(title="tagstream classifier", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runner = runner
    app.state.metrics = metrics
    app.include_router(probes_router(readiness, metrics.registry))
    return app


def _report_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("classifier_runner_crashed", error=repr(task.exception()))
