"""Training data: load from a path or URL, validate, split reproducibly, hash.

Validation collects every problem before failing, so one run tells the user all that is
wrong with a file instead of one row at a time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.serving.text import prepare_text

REQUIRED_COLUMNS = ("id", "title", "description", "tag")
MIN_ITEMS_PER_TAG = 10
MAX_PROBLEMS_SHOWN = 20


class DataError(ValueError):
    """The data cannot be used; the message says why, row by row where it applies."""

    def __init__(self, summary: str, problems: Sequence[str] = ()) -> None:
        self.summary = summary
        self.problems = list(problems)
        lines = [summary, *(f"  - {p}" for p in self.problems[:MAX_PROBLEMS_SHOWN])]
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"  ... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True, slots=True)
class LabeledItem:
    id: str
    title: str
    description: str
    tag: str

    @property
    def text(self) -> str:
        """The model's input, through the one shared preparation step."""
        return prepare_text(self.title, self.description)


@dataclass(frozen=True, slots=True)
class ValidationSummary:
    n_rows: int
    n_items: int
    duplicates_dropped: int
    class_counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Splits:
    train: list[LabeledItem]
    validation: list[LabeledItem]
    test: list[LabeledItem]

    def as_dict(self) -> dict[str, list[LabeledItem]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def read_text(location: str, timeout: float = 30.0) -> str:
    """Read a CSV from a local path or an http(s) URL."""
    if location.startswith(("http://", "https://")):
        try:
            response = httpx.get(location, timeout=timeout, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise DataError(
                f"could not download training data from {location}: {exc}. "
                "Offline? Point TAGSTREAM_DATA_LOCATION or --data at a local CSV."
            ) from exc
        return response.text
    path = Path(location)
    if not path.is_file():
        raise DataError(f"training data not found: {path} (set TAGSTREAM_DATA_LOCATION or --data)")
    return path.read_text(encoding="utf-8")


def parse_csv(text: str, required: Sequence[str] = REQUIRED_COLUMNS) -> list[dict[str, str]]:
    """Rows of a CSV as dicts; fails clearly when required columns are missing."""
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(
            f"the CSV lacks required column(s) {', '.join(missing)}; "
            f"found: {', '.join(columns) or 'no header'}"
        )
    return list(reader)


def validate(
    rows: Sequence[dict[str, str]], approved_tags: Collection[str]
) -> tuple[list[LabeledItem], ValidationSummary]:
    """Check every row and return the usable items.

    Exact duplicates of content (same prepared text, same tag) are dropped, since they
    would otherwise land in two splits and inflate the test score; the same content
    under two different tags is an error a human must settle.
    """
    problems: list[str] = []
    items: list[LabeledItem] = []
    seen_ids: dict[str, int] = {}
    by_text: dict[str, LabeledItem] = {}
    dropped = 0
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        item_id = (row.get("id") or "").strip()
        where = f"line {line}" + (f" (id {item_id})" if item_id else "")
        title, description = row.get("title") or "", row.get("description") or ""
        tag = (row.get("tag") or "").strip()
        if not item_id:
            problems.append(f"{where}: empty id")
        elif item_id in seen_ids:
            problems.append(f"{where}: id repeats line {seen_ids[item_id]}")
        else:
            seen_ids[item_id] = line
        if not prepare_text(title, description):
            problems.append(f"{where}: title and description are both empty")
            continue
        if tag not in approved_tags:
            problems.append(f"{where}: tag {tag!r} is not an approved tag")
            continue
        item = LabeledItem(item_id, title, description, tag)
        earlier = by_text.get(item.text)
        if earlier is not None:
            if earlier.tag != tag:
                problems.append(
                    f"{where}: same content as id {earlier.id} but tagged {tag!r}, "
                    f"not {earlier.tag!r}"
                )
            dropped += 1
            continue
        by_text[item.text] = item
        items.append(item)
    if problems:
        raise DataError(f"the training data has {len(problems)} problem(s)", problems)
    counts = Counter(item.tag for item in items)
    too_few = [
        f"tag {t!r} has {counts.get(t, 0)} item(s), needs at least {MIN_ITEMS_PER_TAG}"
        for t in approved_tags
        if counts.get(t, 0) < MIN_ITEMS_PER_TAG
    ]
    if too_few:
        raise DataError("some tags have too few examples to train and evaluate", too_few)
    summary = ValidationSummary(
        n_rows=len(rows),
        n_items=len(items),
        duplicates_dropped=dropped,
        class_counts=dict(sorted(counts.items())),
    )
    return items, summary


def load_dataset(
    location: str, approved_tags: Collection[str]
) -> tuple[list[LabeledItem], ValidationSummary]:
    """Read, parse and validate the training data at ``location``."""
    return validate(parse_csv(read_text(location)), approved_tags)


def split(
    items: Sequence[LabeledItem], *, seed: int, validation_fraction: float, test_fraction: float
) -> Splits:
    """Stratified train/validation/test split, the same for the same items and seed."""
    # Imported here: the CLI and the feedback service read this module's data shapes and
    # errors without loading scikit-learn.
    from sklearn.model_selection import train_test_split

    ordered = sorted(items, key=lambda i: i.id)  # input order must not change the split
    labels = [i.tag for i in ordered]
    rest, test = train_test_split(
        ordered, test_size=test_fraction, stratify=labels, random_state=seed
    )
    val_share = validation_fraction / (1 - test_fraction)
    train, validation = train_test_split(
        rest, test_size=val_share, stratify=[i.tag for i in rest], random_state=seed
    )
    splits = Splits(train=list(train), validation=list(validation), test=list(test))
    check_no_leakage(splits)
    return splits


def check_no_leakage(splits: Splits) -> None:
    """No item may sit in two splits, by id or by content."""
    by_id: dict[str, set[str]] = defaultdict(set)
    by_text: dict[str, set[str]] = defaultdict(set)
    for name, part in splits.as_dict().items():
        for item in part:
            by_id[item.id].add(name)
            by_text[item.text].add(name)
    leaks = [f"id {key} is in {' and '.join(sorted(v))}" for key, v in by_id.items() if len(v) > 1]
    leaks += [
        f"content {key[:60]!r} is in {' and '.join(sorted(v))}"
        for key, v in by_text.items()
        if len(v) > 1
    ]
    if leaks:
        raise DataError("items leak between splits", leaks)


def dataset_hash(items: Iterable[LabeledItem]) -> str:
    """sha256 of the canonical content, independent of row order."""
    canonical = sorted([i.id, i.title, i.description, i.tag] for i in items)
    return hashlib.sha256(json.dumps(canonical, ensure_ascii=False).encode()).hexdigest()
