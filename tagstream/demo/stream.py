"""The dataset as a stream: ordered by ``created_on``, cut into the first model's share and
the replayed rest, and the replay cut into windows for the report."""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.ml.data import parse_csv, read_text

COLUMNS = ("id", "created_on", "title", "description", "tag")


@dataclass(frozen=True, slots=True)
class Post:
    """One row of the dataset: what the scraper sends, and the answer reviewers know."""

    id: str
    created_on: str
    title: str
    description: str
    tag: str

    def row(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in COLUMNS}


@dataclass(frozen=True, slots=True)
class Stream:
    """The first model's posts (the earliest) and the posts replayed after them."""

    first: tuple[Post, ...]
    replay: tuple[Post, ...]


def load_posts(location: str) -> list[Post]:
    """Every row of the dataset at ``location`` (a path or URL), in time order.

    Ties on ``created_on`` are broken by id, so the order is the same on every run.
    """
    rows = parse_csv(read_text(location), required=COLUMNS)
    posts = [Post(**{name: (row.get(name) or "").strip() for name in COLUMNS}) for row in rows]
    return sorted(posts, key=lambda p: (p.created_on, _numeric(p.id)))


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (0, value)


def split_stream(posts: Sequence[Post], share: float, max_items: int | None = None) -> Stream:
    """The earliest ``share`` of ``posts`` and the rest (at most ``max_items`` of it)."""
    cut = round(len(posts) * share)
    if not 0 < cut < len(posts):
        raise ValueError(f"a share of {share} leaves no posts on one side of {len(posts)}")
    replay = tuple(posts[cut:])
    return Stream(tuple(posts[:cut]), replay[:max_items] if max_items else replay)


def windows(count: int, items: int) -> list[range]:
    """``items`` positions cut into ``count`` consecutive windows of (near) equal size.

    Earlier windows take the remainder, one item each; never an empty window (fewer
    windows when there are fewer items than ``count``).
    """
    if count < 1:
        raise ValueError("at least one window")
    count = min(count, items)
    if count == 0:
        return []
    size, extra = divmod(items, count)
    found, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        found.append(range(start, end))
        start = end
    return found


def shuffled_labels(posts: Sequence[Post], seed: int) -> list[Post]:
    """The same posts with their tags shuffled among them: a deliberately bad training set."""
    tags = [p.tag for p in posts]
    random.Random(seed).shuffle(tags)  # a reproducible bad training set, not secrets  # nosec B311
    return [
        Post(p.id, p.created_on, p.title, p.description, tag)
        for p, tag in zip(posts, tags, strict=True)
    ]


def write_posts(path: Path, posts: Sequence[Post]) -> Path:
    """A CSV of ``posts`` in the dataset's columns (what ``tagstream model train`` reads)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(p.row() for p in posts)
    return path
