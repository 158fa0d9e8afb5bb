"""Gold items join the training split only, and never leak into evaluation."""

from __future__ import annotations

from shared.ml.data import LabeledItem, Splits
from shared.ml.gold import add_to_training, golden_items, is_golden


def test_gold_joins_train_only_and_never_leaks_into_evaluation() -> None:
    def item(i: str, title: str) -> LabeledItem:
        return LabeledItem(i, title, "", "mlops")

    splits = Splits(
        train=[item("1", "train text")],
        validation=[item("2", "validation text")],
        test=[item("3", "test text")],
    )
    gold = [item("gold:a", "fresh text"), item("gold:b", "Test TEXT"), item("gold:c", "train text")]
    merged, dropped = add_to_training(splits, gold, golden_share=0.0)
    assert [i.id for i in merged.train] == ["1", "gold:a"]
    assert merged.validation == splits.validation
    assert merged.test == splits.test
    assert dropped == 2


def test_the_golden_share_is_chosen_by_id_hash_and_never_trained_on() -> None:
    def words(n: int) -> str:  # distinct texts (text preparation folds digits)
        return " ".join("abcdefghij"[int(d)] * 3 for d in str(n))

    gold = [LabeledItem(f"gold:item-{n}", words(n), "", "mlops") for n in range(400)]
    golden = golden_items(gold, 0.2)
    assert 40 < len(golden) < 120  # about a fifth, by hash
    # Stable as the gold set grows: the same items are golden among more items too.
    more = [
        *gold,
        *(LabeledItem(f"gold:new-{n}", "new " + words(n), "", "mlops") for n in range(400)),
    ]
    assert set(golden) <= set(golden_items(more, 0.2))
    # The item id decides, with or without the gold prefix.
    assert all(is_golden(i.id.removeprefix("gold:"), 0.2) for i in golden)
    empty = Splits(train=[], validation=[], test=[])
    merged, dropped = add_to_training(empty, gold, golden_share=0.2)
    assert dropped == 0
    assert {i.id for i in merged.train} == {i.id for i in gold} - {i.id for i in golden}
    assert golden_items(gold, 0.0) == []
