"""The dataset as a stream: time order, the first model's share, windows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tagstream.demo.stream import (
    Post,
    load_posts,
    shuffled_labels,
    split_stream,
    windows,
    write_posts,
)


def post(n: int, created_on: str, tag: str = "mlops") -> Post:
    return Post(str(n), created_on, f"title {n}", f"description {n}", tag)


@pytest.mark.parametrize(
    ("count", "items", "sizes"),
    [(3, 9, [3, 3, 3]), (3, 10, [4, 3, 3]), (4, 11, [3, 3, 3, 2]), (6, 4, [1, 1, 1, 1])],
)
def test_windows_cut_the_stream_into_consecutive_near_equal_parts(
    count: int, items: int, sizes: list[int]
) -> None:
    found = windows(count, items)
    assert [len(w) for w in found] == sizes
    assert [i for w in found for i in w] == list(range(items))  # in order, each once


def test_no_items_no_windows_and_no_window_count_is_refused() -> None:
    assert windows(5, 0) == []
    with pytest.raises(ValueError, match="at least one window"):
        windows(0, 10)


def test_posts_are_read_in_time_order_ties_by_numeric_id(tmp_path: Path) -> None:
    rows = [
        post(10, "2020-03-01 00:00:00"),
        post(9, "2020-03-01 00:00:00"),
        post(1, "2020-04-01 00:00:00"),
        post(2, "2020-02-01 00:00:00"),
    ]
    read = load_posts(str(write_posts(tmp_path / "d.csv", rows)))
    assert [p.id for p in read] == ["2", "9", "10", "1"]
    assert read[0] == rows[3]


def test_the_first_model_gets_the_earliest_share_and_the_stream_the_rest() -> None:
    posts = [post(n, f"2020-01-{n + 1:02d} 00:00:00") for n in range(20)]
    stream = split_stream(posts, 0.25)
    assert [p.id for p in stream.first] == [str(n) for n in range(5)]
    assert [p.id for p in stream.replay] == [str(n) for n in range(5, 20)]
    assert max(p.created_on for p in stream.first) < min(p.created_on for p in stream.replay)
    assert len(split_stream(posts, 0.25, max_items=4).replay) == 4
    with pytest.raises(ValueError, match="leaves no posts"):
        split_stream(posts[:1], 0.5)


def test_shuffled_labels_keep_texts_and_tag_counts_but_move_tags() -> None:
    tags = ["mlops", "other", "computer-vision", "natural-language-processing"]
    posts = [post(n, "2020-01-01 00:00:00", tags[n % 4]) for n in range(40)]
    bad = shuffled_labels(posts, seed=1)
    assert [p.title for p in bad] == [p.title for p in posts]
    assert Counter(p.tag for p in bad) == Counter(p.tag for p in posts)
    assert sum(a.tag != b.tag for a, b in zip(bad, posts, strict=True)) > 20
    assert shuffled_labels(posts, seed=1) == bad  # seeded
