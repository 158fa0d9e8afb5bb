"""``Readiness``: the ``/readyz`` of every service, from named async checks.

Each check answers one question (``database``, ``broker``...) with a bool. Checks run
concurrently, each within ``timeout_seconds``; one that raises or runs out of time counts
as not ready, so a hung dependency makes the probe say so instead of hanging it. The
answer is reused for ``cache_seconds``, so frequent probes cannot load a dependency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

Check = Callable[[], Awaitable[bool]]


class Readiness:
    """A ``probes_router`` readiness callable over named checks.

    ``checks`` is a mapping of name to check, or a callable returning the checks that
    apply now (for a service whose checks depend on how far start-up got).
    """

    def __init__(
        self,
        checks: Mapping[str, Check] | Callable[[], Mapping[str, Check]],
        *,
        timeout_seconds: float = 1.0,
        cache_seconds: float = 0.0,
    ) -> None:
        self._checks = checks
        self._timeout = timeout_seconds
        self._ttl = cache_seconds
        self._answer: dict[str, bool] = {}
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Drop the cached answer (the lifespan calls it when what it checks changes)."""
        self._checked_at = float("-inf")

    async def __call__(self) -> dict[str, bool]:
        async with self._lock:
            if time.monotonic() - self._checked_at >= self._ttl:
                self._answer = await self._check()
                self._checked_at = time.monotonic()
            return dict(self._answer)

    async def _check(self) -> dict[str, bool]:
        checks = dict(self._checks() if callable(self._checks) else self._checks)
        results = await asyncio.gather(*(self._within_time(c) for c in checks.values()))
        return dict(zip(checks, results, strict=True))

    async def _within_time(self, check: Check) -> bool:
        try:
            return bool(await asyncio.wait_for(check(), self._timeout))
        except Exception:  # a failing check means "not ready", never a 500 from the probe
            return False
