"""Rendering of an evaluation report: files, pictures, HTML and byte-for-byte repeatability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.ml.evaluation import EvalItem, EvaluationReport, evaluate
from shared.ml.report import operating_point_label, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILES = {"report.json", "confusion_matrix.png", "precision_coverage.png", "report.html"}
CLASSES = ["computer-vision", "mlops", "natural-language-processing", "other"]


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    rng = np.random.default_rng(7)
    n = 120
    truth = rng.integers(0, len(CLASSES), size=n)
    logits = rng.normal(size=(n, len(CLASSES)))
    logits[np.arange(n), truth] += 2.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    items = [
        EvalItem(f"title {i}", "" if i % 4 == 0 else "some description " * i) for i in range(n)
    ]
    return evaluate(
        [CLASSES[i] for i in truth],
        proba,
        CLASSES,
        dict.fromkeys(CLASSES, 0.7),
        set(CLASSES) - {"other"},
        items,
    )


def _write(report: EvaluationReport, out_dir: Path) -> dict[str, Path]:
    return write_report(
        report,
        out_dir,
        title="Tagger v3 <test split>",
        context={"model_version": "v3", "data_hash": "sha256:abc", "note": "<b>bold</b>"},
    )


def test_write_report_creates_every_file(report: EvaluationReport, tmp_path: Path) -> None:
    out_dir = tmp_path / "nested" / "report"

    paths = _write(report, out_dir)

    assert set(paths) == FILES
    for name, path in paths.items():
        assert path == out_dir / name
        assert path.stat().st_size > 0
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(FILES)


def test_pngs_have_the_png_signature(report: EvaluationReport, tmp_path: Path) -> None:
    paths = _write(report, tmp_path)

    for name in ("confusion_matrix.png", "precision_coverage.png"):
        assert paths[name].read_bytes().startswith(PNG_SIGNATURE)
        assert b"Software" not in paths[name].read_bytes()


def test_json_has_sorted_keys_and_round_trips(report: EvaluationReport, tmp_path: Path) -> None:
    text = _write(report, tmp_path)["report.json"].read_text(encoding="utf-8")

    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    assert "NaN" not in text
    assert EvaluationReport.model_validate_json(text) == report


def test_html_shows_the_report_and_references_both_pictures(
    report: EvaluationReport, tmp_path: Path
) -> None:
    html = _write(report, tmp_path)["report.html"].read_text(encoding="utf-8")

    assert 'src="confusion_matrix.png"' in html
    assert 'src="precision_coverage.png"' in html
    assert "<h1>Tagger v3 &lt;test split&gt;</h1>" in html
    assert "model_version" in html
    assert "sha256:abc" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # autoescaped
    assert "<b>bold</b>" not in html
    for tag in CLASSES:
        assert f"<td>{tag}</td>" in html
        assert f"<td>tag={tag}</td>" in html
    for name in ("short_text", "empty_description", "with_description"):
        assert f"<td>{name}</td>" in html
    assert f"{report.auto.coverage:.1%}" in html
    assert "nan" not in html.lower().replace("nano", "")


def test_two_writes_are_byte_identical(report: EvaluationReport, tmp_path: Path) -> None:
    first = _write(report, tmp_path / "one")
    second = _write(report, tmp_path / "two")
    again = _write(report, tmp_path / "one")

    for name in FILES:
        assert first[name].read_bytes() == second[name].read_bytes(), name
        assert again[name].read_bytes() == second[name].read_bytes(), name


def test_report_without_context_or_auto_accepts(tmp_path: Path) -> None:
    report = evaluate(
        ["a", "b"],
        np.array([[0.9, 0.1], [0.4, 0.6]]),
        ["a", "b"],
        {"a": 0.5},
        set(),
        [EvalItem("t", ""), EvalItem("u", "v")],
    )

    paths = write_report(report, tmp_path, title="empty")

    assert paths["precision_coverage.png"].read_bytes().startswith(PNG_SIGNATURE)
    assert "no tag auto-accepted" in paths["report.html"].read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("thresholds", "approved", "label"),
    [
        ({"a": 0.8, "b": 0.8}, {"a", "b"}, "threshold 0.800"),
        ({"a": 0.8, "b": 0.6}, {"a", "b"}, "per-class thresholds"),
        ({"a": 0.8, "b": 0.6}, {"a"}, "threshold 0.800"),
        ({"a": 0.8}, set(), "no tag auto-accepted"),
    ],
)
def test_operating_point_label(
    thresholds: dict[str, float], approved: set[str], label: str
) -> None:
    report = evaluate(
        ["a"], np.array([[0.9, 0.1]]), ["a", "b"], thresholds, approved, [EvalItem("t", "")]
    )

    assert operating_point_label(report) == label
