"""The review gauges Prometheus scrapes: queue, age, reviewers and their agreement."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from services.review.app import _gauges
from services.review.metrics import ReviewMetrics
from services.review.schemas import ReviewStats
from services.review.settings import ReviewSettings


class StatsDatabase:
    """Answers the gauges' query (review_stats) once, then asks the loop to stop."""

    def __init__(self, stats: ReviewStats, stop: asyncio.Event) -> None:
        self.stats, self.stop = stats, stop
        self.loop = asyncio.get_running_loop()

    def run(self, function: Callable[..., Any], *args: Any) -> ReviewStats:
        self.loop.call_soon_threadsafe(self.stop.set)  # runs in a worker thread
        return self.stats


async def refreshed(stats: ReviewStats) -> CollectorRegistry:
    """The metrics after one refresh of the gauges from ``stats``."""
    registry = CollectorRegistry()
    stop = asyncio.Event()
    database = StatsDatabase(stats, stop)
    settings = ReviewSettings(environment="test")
    await _gauges(database, ReviewMetrics(registry), settings, stop)  # type: ignore[arg-type]
    return registry


async def test_gauges_report_queue_reviewers_and_agreement() -> None:
    registry = await refreshed(
        ReviewStats(
            queue_depth=3,
            oldest_pending_age_seconds=12.5,
            labels_per_reviewer={"ann": 2, "bob": 1},
            doubly_labeled_items=4,
            agreement=0.75,
        )
    )
    assert registry.get_sample_value("tagstream_review_queue_depth") == 3
    assert registry.get_sample_value("tagstream_review_oldest_item_age_seconds") == 12.5
    assert registry.get_sample_value("tagstream_review_reviewers") == 2
    assert registry.get_sample_value("tagstream_review_doubly_labeled_items") == 4
    assert registry.get_sample_value("tagstream_review_agreement") == 0.75


async def test_no_doubly_labeled_items_leaves_agreement_unset() -> None:
    registry = await refreshed(
        ReviewStats(
            queue_depth=0,
            oldest_pending_age_seconds=None,
            labels_per_reviewer={},
            doubly_labeled_items=0,
            agreement=None,
        )
    )
    assert registry.get_sample_value("tagstream_review_oldest_item_age_seconds") == 0
    assert registry.get_sample_value("tagstream_review_reviewers") == 0
    assert registry.get_sample_value("tagstream_review_doubly_labeled_items") == 0
    assert registry.get_sample_value("tagstream_review_agreement") == 0
