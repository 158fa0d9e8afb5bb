"""The gold set: agreed labels of the feedback store, as training rows with their lineage.

The feedback service owns these tables, so the read lives here; training receives the
result as a ``shared.ml.gold.GoldSet`` and never reads the store. The retraining run
passes its own; ``tagstream model train --with-feedback`` (the application layer) asks
this module for it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, inspect, select

from services.feedback.tables import FeedbackItemRow, FeedbackLabelRow, GoldLabelRow
from shared.db.session import make_engine
from shared.ml.data import LabeledItem
from shared.ml.gold import GOLD_ID_PREFIX, GoldSet, label_ids_hash
from shared.serving.text import prepare_text


@dataclass(frozen=True, slots=True)
class GoldRow:
    """One item's reconciled label, its text, and the ids of the labels behind it."""

    item_id: str
    title: str
    description: str
    tag: str
    label_ids: tuple[str, ...] = ()


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


def read_gold_rows(engine: Engine) -> list[GoldRow]:
    """Agreed gold labels whose item text is known."""
    gold, items, labels = GoldLabelRow, FeedbackItemRow, FeedbackLabelRow
    agreed = select(gold.item_id).where(gold.status == "agreed")
    with engine.connect() as connection:
        if not inspect(connection).has_table(gold.__tablename__):
            return []  # a store that never ran is an empty one, not an error
        rows = connection.execute(
            select(gold.item_id, items.title, items.description, gold.tag)
            .join(items, items.item_id == gold.item_id)
            .where(gold.status == "agreed", gold.tag.is_not(None))
        ).all()
        ids: dict[str, list[str]] = {}
        for label_id, item_id in connection.execute(
            # the labels behind gold: reviewers' (end users' reports only asked for review)
            select(labels.label_id, labels.item_id).where(
                labels.item_id.in_(agreed), labels.source == "reviewer"
            )
        ):
            ids.setdefault(item_id, []).append(label_id)
    return [
        GoldRow(item_id, title, description, tag, tuple(sorted(ids.get(item_id, ()))))
        for item_id, title, description, tag in rows
        if tag is not None  # never None here (filtered above); narrows the type
    ]


def load_gold(database_url: str, approved_tags: Collection[str]) -> GoldSet:
    """The gold set in the feedback store at ``database_url``."""
    engine = make_engine(database_url)
    try:
        return gold_set(read_gold_rows(engine), approved_tags)
    finally:
        engine.dispose()
