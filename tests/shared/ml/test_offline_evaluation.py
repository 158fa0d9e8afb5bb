"""Reading any labelled CSV for ``model evaluate``: title and tag suffice, bad rows are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.ml.data import DataError
from shared.ml.offline_evaluation import load_labelled_csv
from shared.settings import DEFAULT_TAGS
from tests.fixtures.data import write_rows


def test_title_and_tag_are_enough(tmp_path: Path) -> None:
    rows = [
        {"title": "YOLO for drones", "tag": "computer-vision"},
        {"title": "BERT", "tag": "other"},
    ]
    items = load_labelled_csv(
        str(write_rows(tmp_path / "t.csv", rows, ["title", "tag"])), DEFAULT_TAGS
    )
    assert [(i.id, i.title, i.description, i.tag) for i in items] == [
        ("line-2", "YOLO for drones", "", "computer-vision"),
        ("line-3", "BERT", "", "other"),
    ]


def test_ids_and_descriptions_are_used_when_present(tmp_path: Path) -> None:
    rows = [{"id": "7", "title": "A", "description": "image models", "tag": "mlops", "x": "1"}]
    path = write_rows(tmp_path / "t.csv", rows, ["id", "title", "description", "tag", "x"])
    (item,) = load_labelled_csv(str(path), DEFAULT_TAGS)
    assert (item.id, item.text) == ("7", "image models")


def test_every_bad_row_is_named(tmp_path: Path) -> None:
    rows = [
        {"title": "ok", "tag": "mlops"},
        {"title": "robots", "tag": "robotics"},
        {"title": "!", "tag": "mlops"},
        {"title": "no tag", "tag": ""},
    ]
    path = write_rows(tmp_path / "t.csv", rows, ["title", "tag"])
    with pytest.raises(DataError) as caught:
        load_labelled_csv(str(path), DEFAULT_TAGS)
    message = str(caught.value)
    assert "3 problem(s)" in message
    assert "line 3: unknown tag 'robotics'" in message
    assert "line 4: title and description have no words" in message
    assert "line 5: empty tag" in message


@pytest.mark.parametrize(
    ("columns", "missing"), [(["title"], "tag"), (["tag", "description"], "title")]
)
def test_missing_columns_are_named(tmp_path: Path, columns: list[str], missing: str) -> None:
    path = write_rows(tmp_path / "t.csv", [{"title": "x", "tag": "mlops"}], columns)
    with pytest.raises(DataError, match=f"lacks required column\\(s\\) {missing}"):
        load_labelled_csv(str(path), DEFAULT_TAGS)


def test_a_header_alone_is_no_data(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "t.csv", [], ["title", "tag"])
    with pytest.raises(DataError, match="no rows"):
        load_labelled_csv(str(path), DEFAULT_TAGS)
