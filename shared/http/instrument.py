"""``instrument(app, ...)``: the outer layers every service's HTTP app gets, in one place.

From the outside in: the request id (every log line of a request carries it), the trace
span (``shared.observability.tracing``; nothing while tracing is off), then the RED
metrics (``shared.http.metrics``). Call it after adding any middleware that answers on its
own (ingest's body-size cap), so those answers are traced and counted too.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from shared.http.metrics import HttpMetrics, RequestMetricsMiddleware, RequestObserver
from shared.observability.logging import RequestIdMiddleware
from shared.observability.tracing import TracingMiddleware


def instrument(
    app: FastAPI,
    service: str,
    registry: CollectorRegistry,
    *,
    observers: Sequence[RequestObserver] = (),
) -> HttpMetrics:
    """Add request metrics, tracing and request ids to ``app``; returns its HTTP metrics."""
    metrics = HttpMetrics(registry)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, observers=observers)
    app.add_middleware(TracingMiddleware, service=service)
    app.add_middleware(RequestIdMiddleware)  # added last: outermost
    return metrics
