"""Bounds on proportions from labelled items: one version's share correct, two versions paired.

Here because two services need them: feedback exports the audit precision with its Wilson
bounds, and the rollout judges a canary against the stable version on the items both
answered (paired). Pure arithmetic on counts, standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


def one_sided_z(confidence: float) -> float:
    """The normal quantile for a one-sided bound that holds with probability ``confidence``."""
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    return NormalDist().inv_cdf(confidence)


def wilson_interval(successes: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for a proportion (bounds at ``z`` standard errors).

    Unlike the textbook p ± z·se it stays inside [0, 1] and keeps a sensible width at
    p = 0 or 1 and on small samples (what an audit sample of a few dozen items is).
    """
    if n <= 0:
        raise ValueError(f"need at least one item, got n={n}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class PairedCounts:
    """Labelled items both versions answered, by which of the two answered right.

    ``a`` is the version under test (the canary), ``b`` the reference (stable).
    """

    both: float
    a_only: float
    b_only: float
    neither: float

    @property
    def n(self) -> float:
        return self.both + self.a_only + self.b_only + self.neither

    @property
    def accuracy_a(self) -> float:
        return (self.both + self.a_only) / self.n

    @property
    def accuracy_b(self) -> float:
        return (self.both + self.b_only) / self.n

    @property
    def difference(self) -> float:
        """accuracy_a - accuracy_b: only the discordant items move it."""
        return (self.a_only - self.b_only) / self.n


def paired_difference_bounds(counts: PairedCounts, confidence: float) -> tuple[float, float]:
    """One-sided ``confidence`` bounds (lower, upper) of accuracy_a - accuracy_b, paired.

    Newcombe's (1998, Stat Med 17:2635) method 10: the Wilson intervals of the two
    accuracies combined with the correlation (phi) of the two versions' right/wrong on
    the same items, which is what makes a paired comparison need far fewer labels than
    two independent samples when the versions mostly agree. Each bound alone holds with
    probability ``confidence`` (the pair is a two-sided 2c-1 interval).
    """
    n = counts.n
    if n <= 0:
        raise ValueError("need at least one item answered by both versions")
    z = one_sided_z(confidence)
    a_right = counts.both + counts.a_only
    b_right = counts.both + counts.b_only
    p_a, p_b = a_right / n, b_right / n
    low_a, high_a = wilson_interval(a_right, n, z)
    low_b, high_b = wilson_interval(b_right, n, z)
    phi = _phi(counts)
    d = p_a - p_b
    below = (p_a - low_a) ** 2 - 2 * phi * (p_a - low_a) * (high_b - p_b) + (high_b - p_b) ** 2
    above = (high_a - p_a) ** 2 - 2 * phi * (high_a - p_a) * (p_b - low_b) + (p_b - low_b) ** 2
    return max(-1.0, d - math.sqrt(max(below, 0.0))), min(1.0, d + math.sqrt(max(above, 0.0)))


def _phi(c: PairedCounts) -> float:
    """Correlation of the two versions' right/wrong, with Newcombe's continuity correction."""
    margins = (c.both + c.a_only) * (c.b_only + c.neither) * (c.both + c.b_only)
    margins *= c.a_only + c.neither
    if margins <= 0:
        return 0.0  # a constant margin: no correlation to estimate
    cross = c.both * c.neither - c.a_only * c.b_only
    if cross > c.n / 2:
        cross -= c.n / 2
    elif cross >= 0:
        cross = 0.0
    return cross / math.sqrt(margins)


def mcnemar_mid_p(counts: PairedCounts) -> float:
    """One-sided exact McNemar mid-p value: small when version a is less accurate than b.

    Only discordant items inform it: with equal accuracies each is a's win with
    probability 1/2, so P(X < a_only) + P(X = a_only)/2 for X ~ Binomial(a_only + b_only,
    1/2). Shown beside the paired bounds; 1.0 with no discordant item.
    """
    wins, losses = round(counts.a_only), round(counts.b_only)
    m = wins + losses
    if m == 0:
        return 1.0

    def pmf(k: int) -> float:
        log = math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1) - m * math.log(2)
        return math.exp(log)

    return min(1.0, sum(pmf(k) for k in range(wins)) + pmf(wins) / 2)


def labels_needed(
    *,
    accuracy: float,
    discordant_share: float,
    margin: float,
    confidence: float,
    difference: float = 0.0,
) -> int:
    """Paired items needed before the lower bound of the difference clears ``-margin``.

    For planning (docs/rollout.md): the reference answers a share ``accuracy`` right, a
    share ``discordant_share`` of items is answered right by one version only, and the
    true difference is ``difference``; the least n (by bisection) whose expected counts
    put the lower bound above -margin.
    """
    if not 0 < discordant_share <= 1 or margin <= 0 or difference <= -margin:
        raise ValueError("need a discordant share in (0, 1], margin > 0, difference > -margin")

    def clears(n: int) -> bool:
        a_only = (discordant_share + difference) * n / 2
        b_only = (discordant_share - difference) * n / 2
        both = accuracy * n - b_only
        counts = PairedCounts(both, a_only, b_only, n - both - a_only - b_only)
        return paired_difference_bounds(counts, confidence)[0] > -margin

    low, high = 1, 10_000_000
    if not clears(high):
        raise ValueError("no sample size up to 10 million items is enough")
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if clears(middle) else (middle + 1, high)
    return low


def agresti_min_bounds(a_only: int, b_only: int, n: int, confidence: float) -> tuple[float, float]:
    """One-sided ``confidence`` bounds of accuracy_a - accuracy_b from the discordant
    counts, by Agresti and Min (2005): the Wald interval after adding half an item to
    each cell, which the offline gate uses on its few hundred test and golden items."""
    z = NormalDist().inv_cdf(confidence)
    b, c, total = a_only + 0.5, b_only + 0.5, n + 2.0
    diff = (b - c) / total
    se = math.sqrt(max(b + c - (b - c) ** 2 / total, 0.0)) / total
    return max(-1.0, diff - z * se), min(1.0, diff + z * se)


def two_sided_z(confidence: float) -> float:
    """The normal quantile for a two-sided interval that holds with probability ``confidence``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf((1 + confidence) / 2)


def mcnemar_exact_p(counts: PairedCounts) -> float:
    """Two-sided exact McNemar p-value: do versions a and b differ in accuracy at all?

    Under equal accuracies each discordant item is a's win with probability 1/2, so the
    p-value is twice the smaller binomial tail of ``a_only`` wins out of the discordant
    items, capped at 1; 1.0 with no discordant item. (``mcnemar_mid_p`` is the one-sided
    mid-p variant the rollout uses to ask "is the canary worse".)
    """
    wins, losses = round(counts.a_only), round(counts.b_only)
    m = wins + losses
    if m == 0:
        return 1.0
    smaller = min(wins, losses)
    tail = sum(math.comb(m, k) for k in range(smaller + 1)) / 2**m
    return min(1.0, 2 * tail)
