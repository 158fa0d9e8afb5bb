"""RED metrics for every HTTP service: requests, errors and duration by route and status.

``RequestMetricsMiddleware`` is pure ASGI and goes outermost (after any middleware that
answers on its own, such as a body-size cap, so those answers are counted too). Routes
are labelled by their template (``/v1/items/{item_id}``), never by the raw path, so a
scanner or a million item ids cannot blow up the series; a path no route matches is
``unmatched``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Probes answer in a millisecond, a review page or a report in tens to hundreds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
UNMATCHED = "unmatched"

#: Told each answered request's path, route template and status (a service's own counter).
RequestObserver = Callable[[str, str, int], None]


class HttpMetrics:
    """The RED metrics of one HTTP app, on a registry the caller owns."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "tagstream_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            labels,
            registry=registry,
        )
        self.errors = Counter(
            "tagstream_http_errors",
            "HTTP requests answered with a server error (5xx, or the app raised), by "
            "method, route template and status code.",
            labels,
            registry=registry,
        )
        self.duration = Histogram(
            "tagstream_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method, route "
            "template and status code.",
            labels,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        if status >= 500:
            self.errors.labels(*labels).inc()
        self.duration.labels(*labels).observe(seconds)


def route_template(scope: Scope) -> str:
    """The path template of the route that answered ``scope``, or ``unmatched``.

    Read after the app ran: the router leaves the route it chose in ``scope["route"]``
    (routes of included routers too). A request answered before routing (a middleware's
    413) falls back to matching the app's top-level routes.
    """
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str) and path:
        return path
    app = scope.get("app")
    routes: Sequence[BaseRoute] = getattr(getattr(app, "router", None), "routes", ())
    partial = None
    for route in routes:
        template = getattr(route, "path", None)
        if not isinstance(template, str) or not template:
            continue
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return template
        if match is Match.PARTIAL and partial is None:  # the path, another method (405)
            partial = template
    return partial or UNMATCHED


class RequestMetricsMiddleware:
    """Count, time and classify every HTTP request by route template and final status."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        observers: Sequence[RequestObserver] = (),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.observers = tuple(observers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the server answers if the app raises before responding
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = route_template(scope)
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)
            for observe in self.observers:
                observe(scope["path"], route, status)
