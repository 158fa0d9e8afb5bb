"""The classifier's process: a small HTTP app for probes and metrics around the batch loop.

``create_app(settings)`` builds it; the lifespan starts the consumer loop as a background
task and, on shutdown (SIGTERM via uvicorn), lets the in-flight batch finish, commit and
leave the consumer group before the process exits.
"""

from __future__ import annotations

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
from shared.http.instrument import instrument
from shared.http.lifespan import BackgroundTasks
from shared.observability.health import probes_router
from shared.observability.metrics import service_registry
from shared.registry.tables import SCHEMA as REGISTRY_SCHEMA
from shared.version import __version__

log = structlog.get_logger("services.classifier")


def create_app(
    settings: ClassifierSettings,
    *,
    metrics_registry: CollectorRegistry | None = None,
    registry_factory: RegistryFactory = open_registry,
) -> FastAPI:
    """The app; nothing is opened until its lifespan starts."""
    metrics = ClassifierMetrics(service_registry(metrics_registry))
    runner = ClassifierRunner(settings, metrics, registry_factory=registry_factory)
    schema = SchemaCheck(REGISTRY_SCHEMA)  # the registry it serves from

    async def readiness() -> dict[str, bool]:
        return {**await runner.readiness(), "schema": await schema()}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await schema.attach(engine)  # says at once what to run if unmigrated
        loops = BackgroundTasks("classifier", settings.classifier_shutdown_timeout_seconds)
        loops.start(runner.run, "classifier-runner")
        log.info("classifier_starting", group_id=settings.classifier_group_id)
        try:
            yield
        finally:
            # Uncommitted records of a batch cut short are re-delivered to whoever holds
            # them next.
            await loops.close()
            engine.dispose()
            log.info("classifier_stopped")

    app = FastAPI(
        title="tagstream classifier",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runner = runner
    app.state.metrics = metrics
    app.include_router(probes_router(readiness, metrics.registry))
    instrument(app, "classifier", metrics.registry)
    return app
