"""The rollout controller's app factory: ``create_app(settings)``; the lifespan opens the
database, the registry and the Prometheus client, runs the controller loop, and closes
them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.rollout import api
from services.rollout.autostart import AutoStart
from services.rollout.metrics import RolloutMetrics
from services.rollout.prometheus import PrometheusClient
from services.rollout.repository import RolloutStore
from services.rollout.service import EventPublisher, KafkaEvents, RolloutController
from services.rollout.settings import RolloutSettings
from services.rollout.tables import SCHEMA
from shared.db.schema_check import SchemaCheck
from shared.db.session import make_engine
from shared.http.instrument import instrument
from shared.http.lifespan import BackgroundTasks
from shared.http.readiness import Readiness
from shared.observability.health import probes_router
from shared.observability.metrics import service_registry
from shared.registry import ModelRegistry
from shared.registry.tables import SCHEMA as REGISTRY_SCHEMA
from shared.security import ApiKeys
from shared.version import __version__

log = structlog.get_logger("services.rollout")
NO_PROMETHEUS_HINT = (
    "rollouts stay paused: set TAGSTREAM_PROMETHEUS_URL to a Prometheus server scraping "
    "the classifier and feedback services (make run starts one when the prometheus "
    "package is installed)"
)


def create_app(
    settings: RolloutSettings,
    *,
    metrics_registry: CollectorRegistry | None = None,
    events: EventPublisher | None = None,
    run_loop: bool = True,
) -> FastAPI:
    """The rollout service. ``events`` replaces the Kafka publisher and ``run_loop=False``
    leaves ticking and auto-start reconciling (``app.state.autostart``) to the caller."""
    metrics = RolloutMetrics(service_registry(metrics_registry))
    holder: dict[str, RolloutStore] = {}
    schema = SchemaCheck(SCHEMA, REGISTRY_SCHEMA)  # its tables, and the registry it drives

    async def database() -> bool:
        store = holder.get("store")
        if store is None:
            return False
        await asyncio.to_thread(store.ping)
        return True

    readiness = Readiness({"database": database, "schema": schema}, timeout_seconds=2.0)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        migrated = await schema.attach(engine)  # says at once what to run if not
        prometheus = (
            PrometheusClient(
                settings.prometheus_url, timeout_seconds=settings.rollout_query_timeout_seconds
            )
            if settings.prometheus_url
            else None
        )
        loops = BackgroundTasks("rollout")
        try:
            registry = ModelRegistry(engine, settings.registry_dir, settings.model_name)
            store = RolloutStore(engine, settings.model_name, settings.step_labels)
            controller = RolloutController(
                settings,
                store,
                registry,
                events if events is not None else KafkaEvents(settings),
                prometheus,
                metrics,
            )
            app.state.controller = controller
            app.state.autostart = AutoStart(settings, controller, registry, store)
            holder["store"] = store
            if prometheus is None:
                metrics.prometheus_up.set(0)
                log.warning("no_prometheus", hint=NO_PROMETHEUS_HINT)
            else:
                metrics.prometheus_up.set(1 if await prometheus.ready() else 0)
            active = await asyncio.to_thread(store.active) if migrated else None
            if active is not None:
                metrics.show(active)
            if run_loop:
                loops.start(controller.run, "rollout-controller")
                if settings.rollout_auto_start:
                    loops.start(app.state.autostart.run, "rollout-auto-start")
                    loops.start(app.state.autostart.watch_events, "rollout-model-events")
            log.info("rollout_started_serving", port=settings.rollout_port)
            yield
        finally:
            holder.pop("store", None)
            await loops.close()
            if prometheus is not None:
                await prometheus.aclose()
            engine.dispose()

    app = FastAPI(
        title="tagstream rollout",
        version=__version__,
        summary="Canary rollouts of model versions, decided by Prometheus metrics.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.api_keys = ApiKeys.from_secrets(settings.rollout_admin_keys)
    app.include_router(api.router)
    app.include_router(probes_router(readiness, metrics.registry))
    instrument(app, "rollout", metrics.registry)
    api.install_error_handlers(app)
    return app
