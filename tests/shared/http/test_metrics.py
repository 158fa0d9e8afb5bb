"""RED metrics by route template, the process and runtime collectors, no ``_created``.

A real app (FastAPI through ASGI) with the shared instrumentation; the metrics are read
back from the registry and from ``/metrics`` as Prometheus would scrape them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client import CollectorRegistry

from shared.http.instrument import instrument
from shared.observability.health import probes_router
from shared.observability.metrics import service_registry


async def _ready() -> dict[str, bool]:
    return {"fine": True}


@pytest.fixture
def registry() -> CollectorRegistry:
    return service_registry(CollectorRegistry())


@pytest.fixture
def seen() -> list[tuple[str, str, int]]:
    return []


@pytest.fixture
async def client(
    registry: CollectorRegistry, seen: list[tuple[str, str, int]]
) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()

    @app.get("/v1/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        if item_id == "missing":
            raise HTTPException(404)
        return {"id": item_id}

    @app.post("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("handler bug")

    app.include_router(probes_router(_ready, registry))
    instrument(app, "probe", registry, observers=[lambda *args: seen.append(args)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_requests_are_counted_and_timed_by_route_template_and_status(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    for item_id in ("a", "b", "missing"):
        await client.get(f"/v1/items/{item_id}")

    route = {"method": "GET", "route": "/v1/items/{item_id}"}
    assert value(registry, "tagstream_http_requests_total", **route, status="200") == 2
    assert value(registry, "tagstream_http_requests_total", **route, status="404") == 1
    assert (
        value(registry, "tagstream_http_request_duration_seconds_count", **route, status="200") == 2
    )
    assert value(registry, "tagstream_http_errors_total", **route, status="404") == 0
    # no series per raw path
    assert (
        value(
            registry,
            "tagstream_http_requests_total",
            method="GET",
            route="/v1/items/a",
            status="200",
        )
        == 0
    )


async def test_server_errors_and_unmatched_paths(
    client: httpx.AsyncClient, registry: CollectorRegistry, seen: list[tuple[str, str, int]]
) -> None:
    assert (await client.post("/v1/boom")).status_code == 500
    await client.get("/wp-admin/login.php")
    await client.get("/v1/boom")  # the path exists, not for GET: 405 under its template

    boom = {"method": "POST", "route": "/v1/boom", "status": "500"}
    assert value(registry, "tagstream_http_requests_total", **boom) == 1
    assert value(registry, "tagstream_http_errors_total", **boom) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(registry, "tagstream_http_requests_total", **unmatched) == 1
    assert (
        value(
            registry, "tagstream_http_requests_total", method="GET", route="/v1/boom", status="405"
        )
        == 1
    )
    assert seen == [
        ("/v1/boom", "/v1/boom", 500),
        ("/wp-admin/login.php", "unmatched", 404),
        ("/v1/boom", "/v1/boom", 405),
    ]


async def test_metrics_carry_process_and_runtime_series_and_no_created(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/v1/items/a")
    text = (await client.get("/metrics")).text

    names = {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"
    }
    assert {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "python_info",
        "python_gc_collections_total",
    } <= names
    assert "tagstream_http_requests_total" in names
    assert not [name for name in names if name.endswith("_created")]


def test_a_registry_given_twice_gets_the_collectors_once() -> None:
    registry = service_registry(CollectorRegistry())
    assert service_registry(registry) is registry
    assert registry.get_sample_value("process_start_time_seconds") is not None
