"""Admission control at ingest: a token bucket of items per API key (429) and a bound on
items in flight, accepted by ingest and not yet acknowledged by the broker (503).

Both answer at once, before any database or broker work, so an overloaded ingest spends
little on what it refuses and never answers 202 for an item it did not write. Checks and
reservations run on the event loop without awaiting, so concurrent requests cannot both
pass a bound that only one of them fits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from services.ingest.metrics import IngestMetrics
from shared.ratelimit import RateLimited, TokenBuckets


class Overloaded(Exception):
    """Too many items in flight; answered 503 with ``Retry-After``."""

    def __init__(self, in_flight: int, limit: int, retry_after_seconds: int) -> None:
        super().__init__(
            f"ingest is overloaded: {in_flight} items in flight (limit {limit}); "
            f"retry after {retry_after_seconds} s"
        )
        self.retry_after_seconds = retry_after_seconds


class Admission:
    """Admit a request's items or refuse them: ``with admission.admit(client, n): ...``.

    ``buckets`` None: no rate limit; ``max_in_flight`` 0: no bound.
    """

    def __init__(
        self,
        *,
        buckets: TokenBuckets | None,
        max_in_flight: int,
        retry_after_seconds: int,
        metrics: IngestMetrics,
    ) -> None:
        self._buckets = buckets
        self._max_in_flight = max_in_flight
        self._retry_after = retry_after_seconds
        self._metrics = metrics
        self._in_flight = 0

    @classmethod
    def unlimited(cls, metrics: IngestMetrics) -> Admission:
        return cls(buckets=None, max_in_flight=0, retry_after_seconds=1, metrics=metrics)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def admit(self, client: str, items: int) -> Iterator[None]:
        """Reserve ``items`` for the block, or raise ``Overloaded`` or ``RateLimited``.

        The bound on items in flight is checked first: an overloaded ingest refuses
        without spending anyone's tokens.
        """
        if self._max_in_flight and self._in_flight + items > self._max_in_flight:
            self._metrics.refused.labels(reason="overloaded").inc()
            raise Overloaded(self._in_flight, self._max_in_flight, self._retry_after)
        if self._buckets is not None:
            try:
                self._buckets.take(client, items)
            except RateLimited:
                self._metrics.refused.labels(reason="rate_limited").inc()
                raise
        self._in_flight += items
        self._metrics.in_flight.set(self._in_flight)
        try:
            yield
        finally:
            self._in_flight -= items
            self._metrics.in_flight.set(self._in_flight)
