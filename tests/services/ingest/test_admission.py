"""Admission at ingest with in-memory fakes and an injected clock: items per API key (a
batch costs one token per item) and the bound on items in flight. The same refusals over
HTTP against the real broker: test_api.py and tests/chaos/test_overload.py."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from services.ingest.admission import Admission, Overloaded
from services.ingest.metrics import IngestMetrics
from services.ingest.schemas import ItemIn
from services.ingest.service import IngestService
from services.ingest.settings import IngestSettings
from services.ingest.validation import ItemLimits
from shared.ratelimit import RateLimited, TokenBuckets
from tests.services.ingest.conftest import metric
from tests.services.ingest.fakes import MemoryDedupStore, MemoryPublisher


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def make_service(
    publisher: MemoryPublisher,
    registry: CollectorRegistry,
    *,
    buckets: TokenBuckets | None = None,
    max_in_flight: int = 0,
) -> IngestService:
    metrics = IngestMetrics(registry)
    return IngestService(
        store=MemoryDedupStore(),
        publisher=publisher,
        topic="content.raw",
        limits=ItemLimits(),
        max_batch_items=3,
        metrics=metrics,
        admission=Admission(
            buckets=buckets, max_in_flight=max_in_flight, retry_after_seconds=2, metrics=metrics
        ),
    )


def batch(*titles: str) -> list[object]:
    return [{"title": t} for t in titles]


async def test_a_batch_costs_one_token_per_item_and_keys_are_limited_apart() -> None:
    clock, publisher, registry = Clock(), MemoryPublisher(), CollectorRegistry()
    buckets = TokenBuckets(per_second=2, burst=3, unit="items", clock=clock)
    service = make_service(publisher, registry, buckets=buckets)

    await service.submit_batch(batch("a", "b", "c"), client="k1")
    with pytest.raises(RateLimited) as refused:
        await service.submit(ItemIn(title="d"), client="k1")
    assert refused.value.retry_after_seconds == 1
    await service.submit(ItemIn(title="e"), client="k2")  # another key, its own bucket
    clock.now = 1.0  # two tokens back: a batch of three still waits
    with pytest.raises(RateLimited) as later:
        await service.submit_batch(batch("f", "g", "h"), client="k1")
    assert later.value.retry_after_seconds == 1
    await service.submit_batch(batch("f", "g"), client="k1")

    assert len(publisher.sent) == 6  # nothing of a refused request was produced
    assert metric(registry, "tagstream_ingest_refused_total", reason="rate_limited") == 2
    assert metric(registry, "tagstream_ingest_items_total", result="accepted") == 6


async def test_items_in_flight_are_bounded_and_refused_at_once_without_spending_tokens() -> None:
    clock, publisher, registry = Clock(), MemoryPublisher(), CollectorRegistry()
    publisher.hold = asyncio.Event()  # the broker has not acknowledged yet
    buckets = TokenBuckets(per_second=1, burst=4, clock=clock)
    service = make_service(publisher, registry, buckets=buckets, max_in_flight=3)

    first = asyncio.create_task(service.submit_batch(batch("a", "b"), client="k1"))
    await publisher.until_waiting(2)
    third = asyncio.create_task(service.submit(ItemIn(title="c"), client="k1"))
    await publisher.until_waiting(3)  # 3 of 3: still admitted
    with pytest.raises(Overloaded) as refused:
        await service.submit(ItemIn(title="d"), client="k2")  # answered while all wait
    assert refused.value.retry_after_seconds == 2
    assert "3 items in flight (limit 3)" in str(refused.value)
    assert not first.done()
    assert metric(registry, "tagstream_ingest_in_flight_items") == 3

    publisher.hold.set()
    await asyncio.gather(first, third)
    assert metric(registry, "tagstream_ingest_in_flight_items") == 0
    # the refusal spent none of k1's tokens: 4 - 3 = 1 left for one more item
    await service.submit(ItemIn(title="e"), client="k1")
    with pytest.raises(RateLimited):
        await service.submit(ItemIn(title="f"), client="k1")
    assert metric(registry, "tagstream_ingest_refused_total", reason="overloaded") == 1
    assert metric(registry, "tagstream_ingest_refused_total", reason="rate_limited") == 1


async def test_a_failed_request_gives_its_items_in_flight_back() -> None:
    publisher, registry = MemoryPublisher(), CollectorRegistry()
    service = make_service(publisher, registry, max_in_flight=3)
    publisher.down = True
    for _ in range(3):
        with pytest.raises(Exception, match="no acknowledgement"):
            await service.submit_batch(batch("a", "b", "c"), client="k1")
    publisher.down = False
    await service.submit_batch(batch("a", "b", "c"), client="k1")
    assert metric(registry, "tagstream_ingest_in_flight_items") == 0


def test_limits_a_full_batch_could_never_pass_are_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="RATE_LIMIT_BURST_ITEMS"):
        IngestSettings(_env_file=None, ingest_rate_limit_burst_items=100)
    with pytest.raises(ValidationError, match="MAX_IN_FLIGHT_ITEMS"):
        IngestSettings(_env_file=None, ingest_max_in_flight_items=100)
    # turned off, neither bounds a batch
    IngestSettings(
        _env_file=None,
        ingest_rate_limit_items_per_second=0,
        ingest_rate_limit_burst_items=1,
        ingest_max_in_flight_items=0,
    )
