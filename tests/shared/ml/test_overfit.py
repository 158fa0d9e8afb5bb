"""Can it overfit: the training pipeline learns a small subset by heart, or says it cannot."""

from __future__ import annotations

from collections import Counter

from shared.ml.checks import stage_one_fit
from shared.ml.config import ModelConfig
from shared.ml.data import LabeledItem
from shared.ml.overfit import overfit_check, stratified_subset
from tests.fixtures.data import synthetic_rows


def _items(per_tag: int = 30) -> list[LabeledItem]:
    return [
        LabeledItem(r["id"], r["title"], r["description"], r["tag"])
        for r in synthetic_rows(per_tag=per_tag)
    ]


def test_subset_takes_every_tag_in_turn_and_repeats() -> None:
    items = _items()
    subset = stratified_subset(items, 80, seed=3)
    assert len(subset) == 80
    assert set(Counter(i.tag for i in subset).values()) == {20}
    assert subset == stratified_subset(list(reversed(items)), 80, seed=3)
    assert subset != stratified_subset(items, 80, seed=4)
    assert len(stratified_subset(items[:10], 80, seed=3)) == 10


def test_the_default_pipeline_overfits_a_small_subset() -> None:
    check = overfit_check(stage_one_fit(ModelConfig(), seed=0), _items(), seed=0)
    assert check.passed
    assert check.train_accuracy == 1.0
    assert check.n_items == 80
    assert check.missed == []


def test_a_pipeline_that_cannot_learn_fails_and_names_what_it_missed() -> None:
    # one feature cannot tell four tags apart
    crippled = stage_one_fit(ModelConfig(max_features=1), seed=0)
    check = overfit_check(crippled, _items(), seed=0)
    assert not check.passed
    assert check.train_accuracy < 0.6
    assert 0 < len(check.missed) <= 10
