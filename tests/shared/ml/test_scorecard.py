"""Headline figures with Wilson intervals, and the paired comparison of two models."""

from __future__ import annotations

import pytest

from shared.ml.baselines import MajorityBaseline
from shared.ml.predictor import Prediction
from shared.ml.scorecard import compare_paired, score, scorecard_of, wilson
from shared.proportions import two_sided_z, wilson_interval

P = Prediction


def test_scorecard_figures_by_hand() -> None:
    predictions = [P("a", 0.9, True), P("a", 0.9, True), P("b", 0.8, True), P("b", 0.4, False)]
    card = scorecard_of("m", predictions, ["a", "b", "b", "a"])
    assert (card.n, card.correct, card.accuracy) == (4, 2, 0.5)
    assert (card.n_auto, card.auto_correct) == (3, 2)
    assert card.auto_coverage == 0.75
    assert card.auto_precision == pytest.approx(2 / 3)
    low, high = wilson_interval(2, 3, two_sided_z(0.95))
    assert card.auto_precision_interval is not None
    assert (card.auto_precision_interval.low, card.auto_precision_interval.high) == (low, high)
    assert card.accuracy_interval.low < 0.5 < card.accuracy_interval.high
    # weighted F1: a has P=1/2 R=1/2, b has P=1/2 R=1/2 -> 0.5
    assert card.f1_weighted == pytest.approx(0.5)


def test_small_sets_get_wide_intervals() -> None:
    few = wilson(9, 10)
    many = wilson(900, 1000)
    assert few is not None
    assert many is not None
    assert few.high - few.low > 3 * (many.high - many.low)
    assert wilson(0, 0) is None


def test_nothing_decided_has_no_precision_and_majority_has_no_auto_route() -> None:
    card = scorecard_of("m", [P("a", 0.2, False)] * 3, ["a", "a", "b"])
    assert card.auto_coverage == 0.0
    assert card.auto_precision is None
    assert card.auto_precision_interval is None
    majority = score(MajorityBaseline.fit(["a", "a", "b"]), ["x", "y", "z"], ["a", "a", "b"])
    assert majority.auto_applicable is False
    assert majority.auto_coverage is None
    assert majority.accuracy == pytest.approx(2 / 3)


def test_score_refuses_inconsistent_inputs() -> None:
    with pytest.raises(ValueError, match="no labelled items"):
        score(MajorityBaseline.fit(["a"]), [], [])
    with pytest.raises(ValueError, match="2 predictions for 1 labels"):
        score(MajorityBaseline.fit(["a"]), ["x"], ["a"], predictions=[P("a", 1, True)] * 2)


def test_paired_comparison_counts_and_interval() -> None:
    a_right = [True] * 30 + [True] * 6 + [False] * 2 + [False] * 2
    b_right = [True] * 30 + [False] * 6 + [True] * 2 + [False] * 2
    c = compare_paired("new", "old", a_right, b_right)
    assert (c.both_correct, c.a_only_correct, c.b_only_correct, c.neither_correct) == (30, 6, 2, 2)
    assert c.n == 40
    assert c.difference == pytest.approx(0.1)
    assert (c.accuracy_a, c.accuracy_b) == (0.9, 0.8)
    assert c.difference_interval.low < 0.1 < c.difference_interval.high
    # 6 against 2 discordant: 2 * P(X <= 2), X ~ Binomial(8, 1/2) = 2 * 37/256
    assert c.mcnemar_p == pytest.approx(74 / 256)


def test_paired_comparison_of_identical_answers_is_no_difference() -> None:
    c = compare_paired("a", "b", [True, False] * 10, [True, False] * 10)
    assert c.difference == 0.0
    assert c.mcnemar_p == 1.0
    assert c.difference_interval.low < 0 < c.difference_interval.high


def test_paired_comparison_refuses_unpaired_answers() -> None:
    with pytest.raises(ValueError, match="answers"):
        compare_paired("a", "b", [True], [True, False])
    with pytest.raises(ValueError, match="no items"):
        compare_paired("a", "b", [], [])
