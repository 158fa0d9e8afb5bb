"""Gold labels from the feedback store, turned into training rows with their lineage.

The feedback service owns the tables; this module reads them through a small, documented
contract (``feedback_gold`` joined with ``feedback_items`` and ``feedback_labels``), so the
training job and ``tagstream model train --with-feedback`` need nothing from ``services/``.

Gold items only ever join the *training* split: validation and test stay on the project's
own held-out data, so versions trained with and without feedback are compared on the same
evaluation items. A gold item whose content equals a validation or test item is dropped
(it would leak the evaluation data into training).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import column, inspect, select, table

from shared.db.session import make_engine
from shared.ml.data import LabeledItem, Splits, check_no_leakage
from shared.ml.text import prepare_text

GOLD_ID_PREFIX = "gold:"
GOLD_SPLIT_NOTE = "train only (validation and test stay on the project's held-out data)"

# The read contract of the feedback store (see services/feedback/tables.py).
_gold = table("feedback_gold", column("item_id"), column("tag"), column("status"))
_items = table("feedback_items", column("item_id"), column("title"), column("description"))
_labels = table("feedback_labels", column("label_id"), column("item_id"))


@dataclass(frozen=True, slots=True)
class GoldRow:
    """One item's reconciled label, its text, and the ids of the labels behind it."""

    item_id: str
    title: str
    description: str
    tag: str
    label_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GoldSet:
    """Training rows from gold labels, with the hashes that tie a model to its labels."""

    items: list[LabeledItem]
    label_ids_hash: str
    n_labels: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def gold_hash(self) -> str:
        """sha256 of the gold rows' content (id, text, tag), independent of order."""
        canonical = sorted([i.id, i.title, i.description, i.tag] for i in self.items)
        return hashlib.sha256(json.dumps(canonical, ensure_ascii=False).encode()).hexdigest()

    def lineage(self) -> dict[str, object]:
        """What the registry's params and model card record about the gold labels."""
        return {
            "gold_labels": len(self.items),
            "gold_label_records": self.n_labels,
            "gold_hash": self.gold_hash,
            "gold_label_ids_hash": self.label_ids_hash,
            "gold_split": GOLD_SPLIT_NOTE,
        }


EMPTY_GOLD = GoldSet(items=[], label_ids_hash=hashlib.sha256(b"[]").hexdigest(), n_labels=0)


def label_ids_hash(label_ids: Iterable[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(label_ids)).encode()).hexdigest()


def gold_set(rows: Iterable[GoldRow], approved_tags: Collection[str]) -> GoldSet:
    """Training items from gold rows; rows without text or an approved tag are skipped."""
    items: list[LabeledItem] = []
    ids: list[str] = []
    skipped = {"empty_text": 0, "unapproved_tag": 0}
    for row in sorted(rows, key=lambda r: r.item_id):
        if row.tag not in approved_tags:
            skipped["unapproved_tag"] += 1
            continue
        if not prepare_text(row.title, row.description):
            skipped["empty_text"] += 1
            continue
        items.append(LabeledItem(GOLD_ID_PREFIX + row.item_id, row.title, row.description, row.tag))
        ids.extend(row.label_ids)
    return GoldSet(items, label_ids_hash(ids), len(ids), {k: v for k, v in skipped.items() if v})


def read_gold_rows(database_url: str) -> list[GoldRow]:
    """Agreed gold labels whose item text is known, from the feedback store."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(_gold.name):
                return []  # a store that never ran is an empty one, not an error
            rows = connection.execute(
                select(_gold.c.item_id, _items.c.title, _items.c.description, _gold.c.tag)
                .join(_items, _items.c.item_id == _gold.c.item_id)
                .where(_gold.c.status == "agreed", _gold.c.tag.is_not(None))
            ).all()
            ids: dict[str, list[str]] = {}
            for label_id, item_id in connection.execute(
                select(_labels.c.label_id, _labels.c.item_id).where(
                    _labels.c.item_id.in_(select(_gold.c.item_id).where(_gold.c.status == "agreed"))
                )
            ):
                ids.setdefault(item_id, []).append(label_id)
    finally:
        engine.dispose()
    return [
        GoldRow(item_id, title, description, tag, tuple(sorted(ids.get(item_id, ()))))
        for item_id, title, description, tag in rows
    ]


def load_gold(database_url: str, approved_tags: Collection[str]) -> GoldSet:
    """The gold set in the feedback store at ``database_url``."""
    return gold_set(read_gold_rows(database_url), approved_tags)


def add_to_training(splits: Splits, gold: Sequence[LabeledItem]) -> tuple[Splits, int]:
    """``splits`` with the gold items appended to train; returns how many were dropped.

    Dropped: gold items whose content is in validation or test (leakage), and gold items
    whose content is already in train (the dataset row stays; duplicates only reweight).
    """
    held_out = {i.text for i in (*splits.validation, *splits.test)}
    in_train = {i.text for i in splits.train}
    kept: list[LabeledItem] = []
    for item in gold:
        text = item.text
        if text in held_out or text in in_train:
            continue
        in_train.add(text)
        kept.append(item)
    merged = Splits(train=[*splits.train, *kept], validation=splits.validation, test=splits.test)
    check_no_leakage(merged)
    return merged, len(gold) - len(kept)
