"""The statistics behind the checks: distances between tag shares, bounds on accuracies.

The accuracy bounds live in ``shared.proportions`` (the feedback service needs the same
Wilson interval); they are re-exported here for the checks and their tests.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.proportions import (
    PairedCounts,
    mcnemar_mid_p,
    paired_difference_bounds,
    wilson_interval,
)

__all__ = [
    "PairedCounts",
    "mcnemar_mid_p",
    "paired_difference_bounds",
    "total_variation",
    "wilson_interval",
]


def total_variation(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Half the L1 distance between two count maps normalised to shares (0 = same, 1 = disjoint)."""
    total_a, total_b = sum(a.values()), sum(b.values())
    return 0.5 * sum(
        abs(a.get(k, 0.0) / total_a - b.get(k, 0.0) / total_b) for k in set(a) | set(b)
    )
