"""Gold labels -> training rows: filtering, hashes, and the training split only."""

from __future__ import annotations

from shared.ml.data import LabeledItem, Splits
from shared.ml.feedback_data import GOLD_ID_PREFIX, GoldRow, add_to_training, gold_set

TAGS = ("mlops", "other")


def test_gold_rows_become_prefixed_items_and_bad_rows_are_skipped() -> None:
    rows = [
        GoldRow("b", "Kubernetes serving", "", "mlops", ("L2",)),
        GoldRow("a", "Graph survey", "", "other", ("L1", "L3")),
        GoldRow("c", "!", "", "mlops", ("L4",)),  # no tokens
        GoldRow("d", "Robot arm", "", "robotics", ("L5",)),  # not approved
    ]
    gold = gold_set(rows, TAGS)
    assert [i.id for i in gold.items] == [f"{GOLD_ID_PREFIX}a", f"{GOLD_ID_PREFIX}b"]
    assert gold.skipped == {"empty_text": 1, "unapproved_tag": 1}
    assert gold.n_labels == 3


def test_hashes_do_not_depend_on_order_and_change_with_labels() -> None:
    rows = [GoldRow("a", "Graph survey", "", "other", ("L1",)), GoldRow("b", "K8s", "", "mlops")]
    one, two = gold_set(rows, TAGS), gold_set(list(reversed(rows)), TAGS)
    assert (one.gold_hash, one.label_ids_hash) == (two.gold_hash, two.label_ids_hash)
    relabeled = gold_set([GoldRow("a", "Graph survey", "", "mlops", ("L9",))], TAGS)
    assert relabeled.gold_hash != one.gold_hash
    assert relabeled.label_ids_hash != one.label_ids_hash


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
