from __future__ import annotations

from pathlib import Path

import pytest

from shared.ml.data import (
    DataError,
    LabeledItem,
    Splits,
    check_no_leakage,
    dataset_hash,
    load_dataset,
    parse_csv,
    split,
    validate,
)
from shared.settings import DEFAULT_TAGS
from tests.fixtures.data import synthetic_rows, write_rows

TAGS = DEFAULT_TAGS


def rows_with(**changes: str) -> list[dict[str, str]]:
    rows = synthetic_rows(per_tag=12)
    rows[0] = {**rows[0], **changes}
    return rows


def test_valid_rows_pass_with_counts() -> None:
    items, summary = validate(synthetic_rows(per_tag=12), TAGS)
    assert summary.n_items == len(items) == 48
    assert summary.class_counts == dict.fromkeys(sorted(TAGS), 12)


def test_missing_column_is_named() -> None:
    with pytest.raises(DataError, match="lacks required column\\(s\\) tag"):
        parse_csv("id,title,description\n1,a,b\n")


def test_empty_text_names_the_line() -> None:
    with pytest.raises(DataError, match=r"line 2 \(id 1\): title and description are both empty"):
        validate(rows_with(title="  ", description="\t"), TAGS)


def test_unapproved_label_is_named() -> None:
    with pytest.raises(DataError, match="tag 'robotics' is not an approved tag"):
        validate(rows_with(tag="robotics"), TAGS)


def test_duplicate_id_points_at_first_line() -> None:
    rows = synthetic_rows(per_tag=12)
    rows[5]["id"] = rows[0]["id"]
    with pytest.raises(DataError, match=r"id repeats line 2"):
        validate(rows, TAGS)


def test_duplicate_content_same_tag_is_dropped() -> None:
    rows = synthetic_rows(per_tag=12)
    rows.append({**rows[0], "id": "999", "title": rows[0]["title"].upper()})
    items, summary = validate(rows, TAGS)
    assert summary.duplicates_dropped == 1
    assert "999" not in {i.id for i in items}


def test_duplicate_content_conflicting_tags_fails() -> None:
    rows = synthetic_rows(per_tag=12)
    rows.append({**rows[0], "id": "999", "tag": "mlops"})
    with pytest.raises(DataError, match="same content as id 1 but tagged 'mlops'"):
        validate(rows, TAGS)


def test_too_few_items_per_tag() -> None:
    rows = [r for r in synthetic_rows(per_tag=12) if r["tag"] != "mlops" or r["id"].endswith("1")]
    with pytest.raises(DataError, match="tag 'mlops' has"):
        validate(rows, TAGS)


def test_all_problems_reported_at_once() -> None:
    rows = synthetic_rows(per_tag=12)
    rows[0]["tag"] = "x"
    rows[1]["title"] = rows[1]["description"] = ""
    with pytest.raises(DataError) as info:
        validate(rows, TAGS)
    assert len(info.value.problems) == 2


def test_missing_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="training data not found"):
        load_dataset(str(tmp_path / "nope.csv"), TAGS)


def test_unreachable_url_is_clear() -> None:
    with pytest.raises(DataError, match="could not download"):
        load_dataset("http://127.0.0.1:9/data.csv", TAGS)


def test_split_is_stratified_reproducible_and_order_free() -> None:
    items, _ = validate(synthetic_rows(per_tag=40), TAGS)
    a = split(items, seed=1, validation_fraction=0.15, test_fraction=0.15)
    b = split(list(reversed(items)), seed=1, validation_fraction=0.15, test_fraction=0.15)
    assert a == b
    assert {i.tag for i in a.test} == set(TAGS)
    sizes = [len(p) for p in a.as_dict().values()]
    assert sum(sizes) == len(items)
    c = split(items, seed=2, validation_fraction=0.15, test_fraction=0.15)
    assert c.test != a.test


def test_leakage_is_detected() -> None:
    item = LabeledItem("1", "same", "text", "mlops")
    other = LabeledItem("2", "Same", "TEXT", "mlops")  # same prepared content
    with pytest.raises(DataError, match="leak between splits"):
        check_no_leakage(Splits(train=[item], validation=[], test=[other]))


def test_dataset_hash_ignores_order_and_sees_content() -> None:
    items, _ = validate(synthetic_rows(per_tag=12), TAGS)
    assert dataset_hash(items) == dataset_hash(list(reversed(items)))
    changed = [*items[1:], LabeledItem(items[0].id, items[0].title, "x", items[0].tag)]
    assert dataset_hash(changed) != dataset_hash(items)


def test_csv_with_quotes_commas_and_newlines(tmp_path: Path) -> None:
    rows = synthetic_rows(per_tag=12)
    rows[0]["title"] = 'A "quoted", title'
    rows[0]["description"] = "line one\nline two"
    items, _ = load_dataset(str(write_rows(tmp_path / "d.csv", rows)), TAGS)
    assert items[0].title == 'A "quoted", title'
