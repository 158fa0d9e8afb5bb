"""Token buckets with an injected clock: bursts, refill, cost per item, Retry-After, memory."""

from __future__ import annotations

import pytest

from shared.ratelimit import RateLimited, TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_holds_and_a_refusal_spends_nothing() -> None:
    clock = Clock()
    buckets = TokenBuckets(per_second=10, burst=50, unit="items", clock=clock)
    buckets.take("k", 25)
    buckets.take("k", 25)  # the whole burst at once
    with pytest.raises(RateLimited) as refused:
        buckets.take("k", 25)
    assert refused.value.retry_after_seconds == 3  # 25 tokens at 10/s: 2.5 s, rounded up
    assert "items" in refused.value.reason
    assert "10 per second" in refused.value.reason
    clock.now = 2.5  # exactly enough refilled: the refusal did not spend any
    buckets.take("k", 25)
    with pytest.raises(RateLimited):
        buckets.take("k", 1)


def test_retry_after_is_the_time_until_enough_tokens_and_at_least_one_second() -> None:
    clock = Clock()
    buckets = TokenBuckets(per_second=100, burst=500, clock=clock)
    buckets.take("k", 500)
    with pytest.raises(RateLimited) as one:
        buckets.take("k", 1)
    assert one.value.retry_after_seconds == 1  # 10 ms, never 0
    with pytest.raises(RateLimited) as batch:
        buckets.take("k", 500)
    assert batch.value.retry_after_seconds == 5
    clock.now = 4.9
    with pytest.raises(RateLimited) as later:
        buckets.take("k", 500)
    assert later.value.retry_after_seconds == 1


def test_keys_have_buckets_of_their_own_and_never_more_than_the_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(per_second=1, burst=3, clock=clock)
    buckets.take("a", 3)
    buckets.take("b", 3)  # a's spending is not b's
    clock.now = 1000.0  # idle a long time: still only a burst
    buckets.take("a", 3)
    with pytest.raises(RateLimited):
        buckets.take("a", 1)


def test_a_cost_above_the_burst_is_refused_with_the_time_to_fill_the_bucket() -> None:
    clock = Clock()
    buckets = TokenBuckets(per_second=2, burst=10, clock=clock)
    with pytest.raises(RateLimited) as refused:
        buckets.take("k", 11)
    assert refused.value.retry_after_seconds == 1  # full already: no wait helps; callers bound it
    buckets.take("k", 10)


def test_settings_that_could_never_pass_are_refused() -> None:
    with pytest.raises(ValueError, match="per_second > 0"):
        TokenBuckets(per_second=0, burst=10)
    with pytest.raises(ValueError, match="per_second > 0"):
        TokenBuckets(per_second=1, burst=0)


def test_per_key_buckets_stay_bounded_dropping_full_ones_first() -> None:
    clock = Clock()
    buckets = TokenBuckets(per_second=1, burst=2, clock=clock, max_buckets=3)
    buckets.take("app/a")
    buckets.take("app/a")
    with pytest.raises(RateLimited):
        buckets.take("app/a")
    buckets.take("app/b")
    clock.now = 2.0  # a and b have refilled: the same as having no bucket
    buckets.take("app/c")
    buckets.take("app/d")
    assert len(buckets) == 2  # c and d, each with a token spent
    buckets.take("app/c")
    with pytest.raises(RateLimited):
        buckets.take("app/c")  # dropping the full buckets changed no one's limit

    lru = TokenBuckets(per_second=1, burst=2, clock=clock, max_buckets=1)
    lru.take("app/a")
    lru.take("app/b")
    assert len(lru) == 1
