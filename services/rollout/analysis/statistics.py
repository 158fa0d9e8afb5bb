"""The statistics behind the checks: distances between tag shares, bounds on accuracies."""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist


def total_variation(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Half the L1 distance between two count maps normalised to shares (0 = same, 1 = disjoint)."""
    total_a, total_b = sum(a.values()), sum(b.values())
    return 0.5 * sum(
        abs(a.get(k, 0.0) / total_a - b.get(k, 0.0) / total_b) for k in set(a) | set(b)
    )


def wilson_interval(successes: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for a proportion (bounds at ``z`` standard errors)."""
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_bounds(
    correct_a: float, n_a: float, correct_b: float, n_b: float, confidence: float
) -> tuple[float, float]:
    """One-sided ``confidence`` bounds (lower, upper) of p_a - p_b; Newcombe's hybrid score method.

    At confidence c each bound alone holds with probability c (the pair is a two-sided
    2c-1 interval). The two samples are taken as independent, and for online accuracy
    they are disjoint: an item is decided, and so labelled, under one version only, and
    each version's labels come mostly from the items it routed to review (its least
    confident) plus the audit sample. The two accuracies are therefore measured on
    different items, not paired on the same ones.
    """
    z = NormalDist().inv_cdf(confidence)
    p_a, p_b = correct_a / n_a, correct_b / n_b
    low_a, high_a = wilson_interval(correct_a, n_a, z)
    low_b, high_b = wilson_interval(correct_b, n_b, z)
    d = p_a - p_b
    return (
        d - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2),
        d + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2),
    )
