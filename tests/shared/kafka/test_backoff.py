"""Jittered exponential backoff: bounds, cap, reset."""

from __future__ import annotations

import random

import pytest

from shared.kafka.backoff import Backoff


def test_every_pause_lies_in_the_upper_half_of_its_step_and_steps_stop_at_the_cap() -> None:
    backoff = Backoff(5.0, first=0.1, uniform=random.Random(7).uniform)
    steps = []
    for _ in range(200):
        step = backoff.step
        pause = backoff.next()
        assert step / 2 <= pause <= step
        steps.append(step)
    assert steps[:7] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0])
    assert max(steps) == 5.0
    assert set(steps[6:]) == {5.0}


def test_the_jitter_spreads_instances_that_fail_together() -> None:
    pauses = {Backoff(5.0, uniform=random.Random(seed).uniform).next() for seed in range(20)}
    assert len(pauses) == 20
    assert min(pauses) >= 0.05
    assert max(pauses) <= 0.1


def test_the_bounds_are_what_uniform_is_asked_for() -> None:
    asked: list[tuple[float, float]] = []

    def lowest(low: float, high: float) -> float:
        asked.append((low, high))
        return low

    backoff = Backoff(0.3, first=0.1, uniform=lowest)
    assert [backoff.next() for _ in range(4)] == pytest.approx([0.05, 0.1, 0.15, 0.15])
    flat = [bound for pair in asked for bound in pair]
    assert flat == pytest.approx([0.05, 0.1, 0.1, 0.2, 0.15, 0.3, 0.15, 0.3])


def test_reset_starts_again_from_the_first_step() -> None:
    backoff = Backoff(10.0, first=0.5)
    for _ in range(5):
        backoff.next()
    backoff.reset()
    assert backoff.step == 0.5


def test_a_first_step_above_the_cap_is_the_cap() -> None:
    assert Backoff(0.05, first=0.1).step == 0.05


@pytest.mark.parametrize(("cap", "first"), [(0.0, 0.1), (1.0, 0.0), (-1.0, 0.1)])
def test_pauses_must_be_positive(cap: float, first: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Backoff(cap, first=first)
