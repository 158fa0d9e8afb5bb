"""A model's headline figures on labelled items, with intervals that small sets need.

One :class:`Scorecard` per :class:`~shared.ml.predictor.Predictor`: accuracy and weighted
F1 over every item, and the auto-accept route (the items it decides alone): coverage and
precision. Accuracy, coverage and precision carry 95% Wilson intervals, so a 40-row
evaluation set reads as what it is (accuracy 0.90, 0.77 to 0.96) rather than as a point.

:class:`PairedComparison` sets two models side by side on the same items: only the items
exactly one of them gets right move the difference; the interval is Newcombe's paired one
and the p-value McNemar's exact test (``shared.proportions``, the same arithmetic the
rollout's online check uses).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict
from sklearn.metrics import f1_score

from shared.ml.predictor import Prediction, Predictor
from shared.proportions import (
    PairedCounts,
    mcnemar_exact_p,
    paired_difference_bounds,
    two_sided_z,
    wilson_interval,
)

CONFIDENCE = 0.95
"""Two-sided coverage of every interval shown here."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)


class Interval(_Frozen):
    low: float
    high: float


class Scorecard(_Frozen):
    """One model on ``n`` items; auto-accept figures are None where it decides nothing
    (or, for ``applicable=False``, never decides alone by design)."""

    name: str
    n: int
    correct: int
    accuracy: float
    accuracy_interval: Interval
    f1_weighted: float
    auto_applicable: bool
    n_auto: int
    auto_correct: int
    auto_coverage: float | None
    auto_coverage_interval: Interval | None
    auto_precision: float | None
    auto_precision_interval: Interval | None


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval | None:
    if n <= 0:
        return None
    low, high = wilson_interval(successes, n, two_sided_z(confidence))
    return Interval(low=low, high=high)


def score(
    predictor: Predictor,
    texts: Sequence[str],
    tags: Sequence[str],
    *,
    predictions: Sequence[Prediction] | None = None,
) -> Scorecard:
    """Score ``predictor`` on ``texts`` with true ``tags`` (or on ``predictions`` already made)."""
    if not tags:
        raise ValueError("nothing to score: no labelled items")
    made = list(predictions) if predictions is not None else predictor.predict(texts)
    if len(made) != len(tags):
        raise ValueError(f"{len(made)} predictions for {len(tags)} labels")
    # A model that never decides alone by design (the majority class) has no auto route.
    applicable = bool(getattr(predictor, "decides_alone", True))
    return scorecard_of(predictor.name, made, tags, auto_applicable=applicable)


def scorecard_of(
    name: str,
    predictions: Sequence[Prediction],
    tags: Sequence[str],
    *,
    auto_applicable: bool = True,
) -> Scorecard:
    n = len(tags)
    right = [p.tag == t for p, t in zip(predictions, tags, strict=True)]
    decided = [p.decided for p in predictions]
    correct = sum(right)
    n_auto = sum(decided)
    auto_correct = sum(r for r, d in zip(right, decided, strict=True) if d)
    applicable = auto_applicable or n_auto > 0
    return Scorecard(
        name=name,
        n=n,
        correct=correct,
        accuracy=correct / n,
        accuracy_interval=_required(wilson(correct, n)),
        f1_weighted=float(
            f1_score(list(tags), [p.tag for p in predictions], average="weighted", zero_division=0)
        ),
        auto_applicable=applicable,
        n_auto=n_auto,
        auto_correct=auto_correct,
        auto_coverage=n_auto / n if applicable else None,
        auto_coverage_interval=wilson(n_auto, n) if applicable else None,
        auto_precision=auto_correct / n_auto if n_auto else None,
        auto_precision_interval=wilson(auto_correct, n_auto),
    )


def _required(interval: Interval | None) -> Interval:
    if interval is None:
        raise ValueError("an interval needs at least one item")
    return interval


class PairedComparison(_Frozen):
    """Model ``a`` against model ``b`` on the same ``n`` items (a minus b)."""

    a: str
    b: str
    n: int
    both_correct: int
    a_only_correct: int
    b_only_correct: int
    neither_correct: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    difference_interval: Interval
    mcnemar_p: float
    """Two-sided exact McNemar p-value: how surprising the split of the discordant items
    would be if both models were equally accurate."""


def compare_paired(
    a: str, b: str, a_right: Sequence[bool], b_right: Sequence[bool]
) -> PairedComparison:
    """Pair two models' right/wrong on the same items, in the same order."""
    if len(a_right) != len(b_right):
        raise ValueError(f"{len(a_right)} answers of {a} for {len(b_right)} of {b}")
    if not a_right:
        raise ValueError("nothing to compare: no items")
    pairs = list(zip(a_right, b_right, strict=True))
    counts = PairedCounts(
        both=sum(x and y for x, y in pairs),
        a_only=sum(x and not y for x, y in pairs),
        b_only=sum(y and not x for x, y in pairs),
        neither=sum(not x and not y for x, y in pairs),
    )
    # Newcombe's bounds are one-sided at their confidence; two of them make the interval.
    low, high = paired_difference_bounds(counts, (1 + CONFIDENCE) / 2)
    return PairedComparison(
        a=a,
        b=b,
        n=len(pairs),
        both_correct=int(counts.both),
        a_only_correct=int(counts.a_only),
        b_only_correct=int(counts.b_only),
        neither_correct=int(counts.neither),
        accuracy_a=counts.accuracy_a,
        accuracy_b=counts.accuracy_b,
        difference=counts.difference,
        difference_interval=Interval(low=low, high=high),
        mcnemar_p=mcnemar_exact_p(counts),
    )
