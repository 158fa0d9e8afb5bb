"""The offline gate's statistics: the paired interval and the verdict rules."""

from __future__ import annotations

import pytest

from shared.ml.gate import GateConfig, PairedSlice

CONFIG = GateConfig(margin=0.05, min_slice_items=30, confidence=0.95)


def table(both: int, candidate_only: int, stable_only: int, neither: int) -> PairedSlice:
    return PairedSlice(both, candidate_only, stable_only, neither)


def test_identical_answers_pass_once_the_sample_can_show_it() -> None:
    # No item differs: the difference is 0, and the interval narrows with n.
    small, large = table(20, 0, 0, 0), table(200, 0, 0, 0)
    assert small.figures(CONFIG, always_judged=True)["passed"] is False  # too few to prove
    figures = large.figures(CONFIG, always_judged=True)
    assert figures["difference"] == 0
    assert figures["passed"] is True
    assert -0.05 < figures["lower_bound"] < 0 < figures["upper_bound"]


def test_a_clearly_worse_candidate_fails_and_a_better_one_passes() -> None:
    worse = table(50, 2, 40, 8).figures(CONFIG, always_judged=True)
    assert worse["difference"] == pytest.approx(-0.38)
    assert worse["passed"] is False
    better = table(50, 40, 2, 8).figures(CONFIG, always_judged=True)
    assert better["passed"] is True
    assert better["candidate_accuracy"] == pytest.approx(0.9)
    assert better["stable_accuracy"] == pytest.approx(0.52)


def test_the_bounds_match_the_agresti_min_formula() -> None:
    # b=10, c=4, n=100 -> adjusted b'=10.5, c'=4.5, n'=102.
    low, high = table(80, 10, 4, 6).bounds(0.95)
    diff = 6 / 102
    se = ((15 - 36 / 102) ** 0.5) / 102
    assert low == pytest.approx(diff - 1.6448536 * se)
    assert high == pytest.approx(diff + 1.6448536 * se)


def test_small_slices_are_reported_but_not_judged() -> None:
    figures = table(5, 0, 10, 0).figures(CONFIG)
    assert figures["judged"] is False
    assert figures["passed"] is None
    assert figures["n"] == 15
