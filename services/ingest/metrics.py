"""Ingest metrics, defined once on a registry the caller owns (tests pass their own)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

API_ENDPOINTS = frozenset({"/v1/items", "/v1/items:batch"})
PRODUCE_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class IngestMetrics:
    """Every metric of the ingest service, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "tagstream_ingest_requests",
            "HTTP requests to the ingest API by endpoint and status code.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.items = Counter(
            "tagstream_ingest_items",
            "Items received, by result (accepted, duplicate, rejected).",
            ["result"],
            registry=registry,
        )
        self.rejections = Counter(
            "tagstream_ingest_rejections",
            "Rejections by reason (field-level category such as title_too_long).",
            ["reason"],
            registry=registry,
        )
        self.produce_latency = Histogram(
            "tagstream_ingest_produce_latency_seconds",
            "Time from sending an item to the broker's acknowledgement.",
            buckets=PRODUCE_LATENCY_BUCKETS,
            registry=registry,
        )
        self.broker_unavailable = Counter(
            "tagstream_ingest_broker_unavailable",
            "Requests answered 503 because the broker did not acknowledge in time.",
            registry=registry,
        )
        self.refused = Counter(
            "tagstream_ingest_refused",
            "Requests refused before any work, by reason: rate_limited (429, the API "
            "key's items per second), overloaded (503, too many items in flight).",
            ["reason"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "tagstream_ingest_in_flight_items",
            "Items accepted for processing and not yet acknowledged by the broker.",
            registry=registry,
        )

    def count_request(self, path: str, route: str, status: int) -> None:
        """``tagstream_ingest_requests_total`` for API calls (the shared HTTP metrics'
        observer): kept beside the generic ``tagstream_http_*`` because the ingest error
        alert and the pipeline dashboard read it."""
        if path.startswith("/v1/"):
            # by path: the body-size cap answers 413 before any route is chosen
            endpoint = path if path in API_ENDPOINTS else "other"
            self.requests.labels(endpoint=endpoint, status=str(status)).inc()

    def count_rejections(self, categories: Iterable[str], *, item: bool) -> None:
        """Count each reason, and one rejected item when ``item`` (not a whole request)."""
        if item:
            self.items.labels(result="rejected").inc()
        for category in categories:
            self.rejections.labels(reason=category).inc()
