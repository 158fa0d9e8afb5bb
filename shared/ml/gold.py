"""Gold labels as training rows: the shape training accepts, and how it joins the splits.

The feedback service owns the gold labels and their tables; it reads them and hands
training a ``GoldSet`` (``services.feedback.gold``). Training knows nothing of where they
came from.

Gold items only ever join the *training* split: validation and test stay on the project's
own held-out data, so versions trained with and without feedback are compared on the same
evaluation items. A gold item whose content equals a validation or test item is dropped
(it would leak the evaluation data into training).

A reserved share of the gold items, the golden set (``is_golden``, chosen
by a hash of the item id), never joins training: the offline gate compares candidate and
stable on it, so it must be unseen by both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.ml.data import LabeledItem, Splits, check_no_leakage

GOLD_ID_PREFIX = "gold:"
GOLD_SPLIT_NOTE = "train only (validation and test stay on the project's held-out data)"


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


def is_golden(item_id: str, share: float) -> bool:
    """Whether a gold item belongs to the golden set: a hash of its id, not a draw.

    The same item stays golden (or not) as the gold set grows, so no version, earlier or
    later, has trained on a golden item.
    """
    raw = item_id.removeprefix(GOLD_ID_PREFIX)
    digest = hashlib.sha256(raw.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def golden_items(gold: Iterable[LabeledItem], share: float) -> list[LabeledItem]:
    """The golden set within ``gold``."""
    return [item for item in gold if is_golden(item.id, share)]


def label_ids_hash(label_ids: Iterable[str]) -> str:
    """sha256 of the label ids, independent of order: which labels a model learnt from."""
    return hashlib.sha256(json.dumps(sorted(label_ids)).encode()).hexdigest()


def add_to_training(
    splits: Splits, gold: Sequence[LabeledItem], *, golden_share: float
) -> tuple[Splits, int]:
    """``splits`` with the gold items appended to train; returns how many were dropped.

    Golden items (``golden_share`` of them, by id hash) are left out first: they are the
    gate's, not training's, and are not counted as dropped. Dropped: gold items whose
    content is in validation or test (leakage), and gold items whose content is already in
    train (the dataset row stays; duplicates only reweight).
    """
    held_out = {i.text for i in (*splits.validation, *splits.test)}
    in_train = {i.text for i in splits.train}
    kept: list[LabeledItem] = []
    trainable = [item for item in gold if not is_golden(item.id, golden_share)]
    for item in trainable:
        text = item.text
        if text in held_out or text in in_train:
            continue
        in_train.add(text)
        kept.append(item)
    merged = Splits(train=[*splits.train, *kept], validation=splits.validation, test=splits.test)
    check_no_leakage(merged)
    return merged, len(trainable) - len(kept)
