"""Can it overfit? The training pipeline must learn a small training subset by heart.

A model that cannot reach (near) 100% accuracy on the 80 items it was just fitted on has
a bug in its pipeline (labels shuffled against texts, features dropped, a regulariser
set so strong that it learns nothing), whatever its test score says. This is the first
sanity check of any training code (Karpathy's "overfit one batch"); it costs one fit on
a few items, so every training run does it and the report fails loudly when it does not
hold. It is reported, not enforced: the offline gate decides registration.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

from shared.ml.data import LabeledItem
from shared.ml.predictor import Predictor, tags_of

SUBSET_ITEMS = 80
MIN_ACCURACY = 0.99

Fit = Callable[[Sequence[str], Sequence[str]], Predictor]
"""Fits a fresh model on (texts, tags) and returns it as a predictor."""


class OverfitCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    n_items: int
    train_accuracy: float
    min_accuracy: float
    passed: bool
    missed: list[str]
    """Titles of the subset items the model got wrong after fitting on them (a few)."""


def stratified_subset(items: Sequence[LabeledItem], n_items: int, seed: int) -> list[LabeledItem]:
    """Up to ``n_items`` items, every tag in turn, the same for the same items and seed."""
    by_tag: dict[str, list[LabeledItem]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.id):
        by_tag[item.tag].append(item)
    rng = random.Random(seed)  # a reproducible sample, not secrets  # nosec B311
    for group in by_tag.values():
        rng.shuffle(group)
    picked: list[LabeledItem] = []
    while len(picked) < n_items and any(by_tag.values()):
        for tag in sorted(by_tag):
            if by_tag[tag] and len(picked) < n_items:
                picked.append(by_tag[tag].pop())
    return picked


def overfit_check(
    fit: Fit,
    items: Sequence[LabeledItem],
    *,
    seed: int,
    n_items: int = SUBSET_ITEMS,
    min_accuracy: float = MIN_ACCURACY,
) -> OverfitCheck:
    """Fit on a stratified subset of ``items`` and score the model on that same subset."""
    subset = stratified_subset(items, n_items, seed)
    if not subset:
        raise ValueError("no training items to overfit on")
    texts, tags = [i.text for i in subset], [i.tag for i in subset]
    predicted = tags_of(fit(texts, tags), texts)
    right = [p == t for p, t in zip(predicted, tags, strict=True)]
    accuracy = sum(right) / len(subset)
    return OverfitCheck(
        n_items=len(subset),
        train_accuracy=accuracy,
        min_accuracy=min_accuracy,
        passed=accuracy >= min_accuracy,
        missed=[item.title for item, ok in zip(subset, right, strict=True) if not ok][:10],
    )
