"""Jittered exponential backoff for reconnecting to the broker.

Every instance of a service loses the broker at the same moment; without jitter they
would all retry in lock-step and hit it together when it comes back. "Equal jitter":
each pause is drawn from the upper half of the exponential step, so a retry is never
much sooner than the step intends and instances spread over the other half.
"""

from __future__ import annotations

import random
from collections.abc import Callable

FIRST_PAUSE_SECONDS = 0.1


class Backoff:
    """Pauses that double from ``first`` up to ``cap`` seconds, jittered; ``reset`` on success."""

    def __init__(
        self,
        cap: float,
        *,
        first: float = FIRST_PAUSE_SECONDS,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if cap <= 0 or first <= 0:
            raise ValueError("backoff pauses must be positive")
        self._cap = cap
        self._first = min(first, cap)
        self._step = self._first
        self._uniform = uniform

    @property
    def step(self) -> float:
        """The un-jittered pause the next ``next()`` draws from (its upper bound)."""
        return self._step

    def next(self) -> float:
        """The next pause: in ``[step / 2, step]``; the step then doubles, up to the cap."""
        step = self._step
        self._step = min(step * 2, self._cap)
        return self._uniform(step / 2, step)

    def reset(self) -> None:
        self._step = self._first
