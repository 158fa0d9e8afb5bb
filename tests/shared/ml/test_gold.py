"""Gold items join the training split only, and never leak into evaluation."""

from __future__ import annotations

from shared.ml.data import LabeledItem, Splits
from shared.ml.gold import add_to_training


def test_gold_joins_train_only_and_never_leaks_into_evaluation() -> None:
    def item(i: str, title: str) -> LabeledItem:
        return LabeledItem(i, title, "", "mlops")

    splits = Splits(
        train=[item("1", "train text")],
        validation=[item("2", "validation text")],
        test=[item("3", "test text")],
    )
    gold = [item("gold:a", "fresh text"), item("gold:b", "Test TEXT"), item("gold:c", "train text")]
    merged, dropped = add_to_training(splits, gold)
    assert [i.id for i in merged.train] == ["1", "gold:a"]
    assert merged.validation == splits.validation
    assert merged.test == splits.test
    assert dropped == 2
