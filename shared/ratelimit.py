"""Token buckets, one per key (an API key, an end user): a burst at once, a rate sustained.

Used by feedback (user reports per end user) and ingest (items per API key). A request
costs ``cost`` tokens (ingest: one per item, so a batch of 500 costs 500); refused, it
is told how long until its bucket holds enough (``RateLimited.retry_after_seconds``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimited(Exception):
    """Too many for this key now; answered 429 with ``Retry-After``."""

    def __init__(self, retry_after_seconds: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after_seconds = retry_after_seconds
        self.reason = reason


class TokenBuckets:
    """One token bucket per key: ``burst`` tokens at once, ``per_second`` sustained.

    A bucket that has refilled is the same as no bucket, so when more than
    ``max_buckets`` are kept the full ones are dropped (exact); if that is not enough, the
    least recently used are dropped too (those keys get a fresh burst: the bound on memory
    wins over a limit nobody hit for a while).

    ``unit`` names what a token stands for in the refusal (``reports``, ``items``).
    """

    def __init__(
        self,
        *,
        per_second: float,
        burst: float,
        unit: str = "requests",
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a token bucket needs per_second > 0 and burst >= 1")
        self._rate = float(per_second)
        self._burst = float(burst)
        self._unit = unit
        self._clock = clock
        self._max = max_buckets
        # insertion order = least recently used first (``take`` re-inserts)
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def burst(self) -> float:
        return self._burst

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, cost: float = 1.0) -> None:
        """Spend ``cost`` tokens of ``key``'s bucket, or raise ``RateLimited`` (spending none).

        A cost above ``burst`` can never be paid: callers bound it (ingest's largest batch
        is at most its burst, a setting check); it is refused with the time a full bucket
        would take.
        """
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            wait = (min(cost, self._burst) - tokens) / self._rate
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                seconds,
                f"too many {self._unit}: at most {self._rate:g} per second "
                f"(bursts of {self._burst:g}); retry after {seconds} s",
            )
        self._buckets[key] = (tokens - cost, now)
        if len(self._buckets) > self._max:
            self._shrink(now)

    def _shrink(self, now: float) -> None:
        for key, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self._rate >= self._burst:
                del self._buckets[key]
        while len(self._buckets) > self._max:
            del self._buckets[next(iter(self._buckets))]
