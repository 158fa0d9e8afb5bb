"""The gold set read from the feedback store: filtering, hashes and lineage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from services.feedback.gold import GoldRow, gold_set, load_gold, read_gold_rows
from services.feedback.repository import FeedbackStore
from shared.db.session import make_engine
from shared.ml.gold import GOLD_ID_PREFIX, label_ids_hash
from tests.fixtures.db import migrated
from tests.services.feedback.helpers import content, label

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


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated(database_url))
    yield engine
    engine.dispose()


def test_only_agreed_labels_with_known_text_are_read(engine: Engine, database_url: str) -> None:
    store = FeedbackStore(engine, TAGS)
    store.apply_batch(
        items=[content("a", title="Graph survey"), content("c", title="Kubernetes serving")],
        labels=[
            label("a", "other", label_id="L1"),
            label("a", "other", labeler="bob", label_id="L2"),
            label("b", "mlops", label_id="L3"),  # agreed, but its text never arrived
            label("c", "mlops", label_id="L4"),
            label("c", "other", labeler="bob", label_id="L5"),  # conflict
        ],
    )
    rows = read_gold_rows(engine)
    assert [(r.item_id, r.tag, r.label_ids) for r in rows] == [("a", "other", ("L1", "L2"))]
    assert rows[0].title == "Graph survey"

    gold = load_gold(database_url, TAGS)
    assert [i.id for i in gold.items] == [f"{GOLD_ID_PREFIX}a"]
    assert gold.label_ids_hash == label_ids_hash(["L2", "L1"])
    assert gold.n_labels == 2


def test_a_store_that_never_ran_holds_no_gold(tmp_path: Path) -> None:
    gold = load_gold(f"sqlite:///{tmp_path}/fresh.db", TAGS)
    assert (gold.items, gold.n_labels) == ([], 0)
