"""The bounds behind audit precision and the paired canary check."""

from __future__ import annotations

import pytest

from shared.proportions import (
    PairedCounts,
    labels_needed,
    mcnemar_exact_p,
    mcnemar_mid_p,
    one_sided_z,
    paired_difference_bounds,
    two_sided_z,
    wilson_interval,
)


def test_wilson_matches_the_textbook_example() -> None:
    # Newcombe (1998, Stat Med 17:857) example: 81/263, 95% two-sided: 0.2553 to 0.3662.
    lower, upper = wilson_interval(81, 263, z=1.959964)
    assert (round(lower, 4), round(upper, 4)) == (0.2553, 0.3662)


def test_wilson_stays_inside_zero_and_one_and_is_not_degenerate_at_the_edges() -> None:
    lower, upper = wilson_interval(30, 30, z=1.645)
    assert 0.9 < lower < 1.0 == upper
    lower, upper = wilson_interval(0, 30, z=1.645)
    assert lower == 0.0 < upper < 0.1
    with pytest.raises(ValueError, match="at least one item"):
        wilson_interval(0, 0, z=1.645)


def test_paired_bounds_match_the_worked_example() -> None:
    # Altman et al., Statistics with Confidence (2000), table 6.2: 14 both, 5 first only,
    # 0 second only, 22 neither; Newcombe's method 10, 95% two-sided. The lower limit is
    # the book's 0.011 (the same formula as biostatUZH's confIntPairedProportion).
    lower, upper = paired_difference_bounds(PairedCounts(14, 5, 0, 22), confidence=0.975)
    assert round(lower, 3) == 0.011
    assert lower < 5 / 41 < upper < 0.3


def test_pairing_narrows_the_bounds_when_the_versions_mostly_agree() -> None:
    # Same accuracies (0.9 each on 300 items); agreeing on all but 20 items is much
    # stronger evidence than the same accuracies with the errors on different items.
    agreeing = paired_difference_bounds(PairedCounts(260, 10, 10, 20), confidence=0.95)
    apart = paired_difference_bounds(PairedCounts(240, 30, 30, 0), confidence=0.95)
    assert apart[0] < agreeing[0] < 0 < agreeing[1] < apart[1]
    assert agreeing[1] - agreeing[0] < 0.7 * (apart[1] - apart[0])


def test_paired_bounds_move_only_with_the_discordant_items() -> None:
    better = paired_difference_bounds(PairedCounts(200, 30, 5, 65), confidence=0.95)
    worse = paired_difference_bounds(PairedCounts(200, 5, 30, 65), confidence=0.95)
    assert better[0] > 0 > worse[1]
    assert better[0] == pytest.approx(-worse[1])


def test_mcnemar_mid_p() -> None:
    # 0 wins of 5 discordant: P(X=0)/2 = 1/64; 5 of 5: 1 - 1/64; 2 of 4: exactly 1/2.
    assert mcnemar_mid_p(PairedCounts(10, 0, 5, 0)) == pytest.approx(1 / 64)
    assert mcnemar_mid_p(PairedCounts(10, 5, 0, 0)) == pytest.approx(1 - 1 / 64)
    assert mcnemar_mid_p(PairedCounts(10, 2, 2, 0)) == pytest.approx(0.5)
    assert mcnemar_mid_p(PairedCounts(10, 0, 0, 3)) == 1.0
    # large samples do not overflow
    assert mcnemar_mid_p(PairedCounts(0, 4000, 6000, 0)) < 1e-50


def test_labels_needed_grows_with_disagreement_and_clears_the_margin() -> None:
    fewer = labels_needed(accuracy=0.85, discordant_share=0.1, margin=0.05, confidence=0.95)
    more = labels_needed(accuracy=0.85, discordant_share=0.2, margin=0.05, confidence=0.95)
    assert 100 < fewer < more < 300
    n = more
    counts = PairedCounts(0.85 * n - 0.1 * n, 0.1 * n, 0.1 * n, 0.15 * n - 0.1 * n)
    assert paired_difference_bounds(counts, 0.95)[0] > -0.05
    smaller = PairedCounts(*(x * (n - 1) / n for x in (counts.both, 0.1 * n, 0.1 * n, 0.05 * n)))
    assert paired_difference_bounds(smaller, 0.95)[0] <= -0.05


def test_confidence_outside_the_open_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="confidence"):
        one_sided_z(0.5)


def test_mcnemar_exact_p_is_the_two_sided_binomial_tail() -> None:
    # 3 against 1 discordant: 2 * P(X <= 1), X ~ Binomial(4, 1/2) = 2 * 5/16.
    assert mcnemar_exact_p(PairedCounts(30, 3, 1, 6)) == pytest.approx(0.625)
    assert mcnemar_exact_p(PairedCounts(30, 1, 3, 6)) == pytest.approx(0.625)
    # 0 against 6: 2 * (1/2)^6.
    assert mcnemar_exact_p(PairedCounts(10, 0, 6, 0)) == pytest.approx(2 / 64)
    # balanced discordance cannot exceed 1; none at all says nothing
    assert mcnemar_exact_p(PairedCounts(10, 5, 5, 0)) == 1.0
    assert mcnemar_exact_p(PairedCounts(10, 0, 0, 3)) == 1.0


def test_two_sided_z() -> None:
    assert two_sided_z(0.95) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError, match="confidence"):
        two_sided_z(1.0)
