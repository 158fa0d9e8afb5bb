"""The registry behind every service's ``/metrics``: its own metrics plus the process's.

``service_registry(registry)`` is what each ``create_app`` calls: it adds the standard
process (``process_*``: CPU, resident memory, open file descriptors, start time) and
runtime (``python_info``, ``python_gc_*``) collectors, and turns off the ``*_created``
series prometheus_client adds to every counter and histogram by default (one extra series
each that no dashboard or alert reads, and Prometheus derives resets itself).
"""

from __future__ import annotations

import contextlib

from prometheus_client import (
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.registry import CollectorRegistry


def service_registry(registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """``registry`` (tests pass their own) or a fresh one, with the runtime collectors."""
    # process-wide in prometheus_client; every service wants it, so set where they start
    disable_created_metrics()
    registry = registry if registry is not None else CollectorRegistry()
    add_runtime_collectors(registry)
    return registry


def add_runtime_collectors(registry: CollectorRegistry) -> None:
    """Register ``process_*``, ``python_info`` and ``python_gc_*`` once on ``registry``."""
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        # a registry handed to two apps (tests) already has them: the second is a no-op
        with contextlib.suppress(ValueError):
            collector(registry=registry)
