"""Evaluation metrics on small inputs whose answers are worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.ml.evaluation import MAX_CURVE_POINTS, EvalItem, EvaluationReport, evaluate

CLASSES = ["a", "b", "c"]
APPROVED = {"a", "b"}
THRESHOLDS = {"a": 0.8, "b": 0.6, "c": 0.5}

# (true tag, probabilities, item); comments: predicted tag, route, right or wrong.
ROWS = [
    ("a", [0.9, 0.05, 0.05], EvalItem("Short", "")),  # a auto right
    ("a", [0.7, 0.2, 0.1], EvalItem("A title", "d" * 100)),  # a review right
    ("b", [0.85, 0.1, 0.05], EvalItem("x" * 90, "")),  # a auto wrong
    ("b", [0.1, 0.6, 0.3], EvalItem("Tiny", "small description")),  # b auto (== threshold) right
    ("b", [0.2, 0.3, 0.5], EvalItem("B", "   ")),  # c review (c not approved) wrong
    ("c", [0.1, 0.2, 0.7], EvalItem("Long one", "d" * 200)),  # c review right
    ("x", [0.05, 0.9, 0.05], EvalItem("Unknown", "tag")),  # b auto wrong (x unknown)
    ("c", [0.3, 0.4, 0.3], EvalItem("y" * 100, "")),  # b review wrong
]


def _evaluate(rows=ROWS, **kwargs) -> EvaluationReport:
    y_true = [row[0] for row in rows]
    proba = np.array([row[1] for row in rows])
    items = [row[2] for row in rows]
    return evaluate(
        y_true,
        proba,
        kwargs.pop("classes", CLASSES),
        kwargs.pop("thresholds", THRESHOLDS),
        kwargs.pop("approved_tags", APPROVED),
        items,
        **kwargs,
    )


def _json(report: EvaluationReport) -> str:
    return json.dumps(report.model_dump(mode="json"), allow_nan=False)


def test_overall_metrics_match_hand_computation() -> None:
    overall = _evaluate().overall

    assert overall.accuracy == pytest.approx(4 / 8)
    # Labels a, b, c, x with support 2, 3, 2, 1.
    assert overall.precision_weighted == pytest.approx((2 * 2 / 3 + 3 * 1 / 3 + 2 * 0.5) / 8)
    assert overall.recall_weighted == pytest.approx(0.5)
    assert overall.f1_weighted == pytest.approx((2 * 0.8 + 3 * 1 / 3 + 2 * 0.5) / 8)
    assert overall.precision_macro == pytest.approx((2 / 3 + 1 / 3 + 0.5 + 0) / 4)
    assert overall.recall_macro == pytest.approx((1 + 1 / 3 + 0.5 + 0) / 4)
    assert overall.f1_macro == pytest.approx((0.8 + 1 / 3 + 0.5 + 0) / 4)


def test_per_class_metrics_include_unknown_true_labels() -> None:
    per_class = _evaluate().per_class

    assert list(per_class) == ["a", "b", "c", "x"]
    assert per_class["a"].model_dump() == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    assert per_class["b"].model_dump() == pytest.approx(
        {"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3, "support": 3}
    )
    assert per_class["c"].model_dump() == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert per_class["x"].model_dump() == {"precision": 0, "recall": 0, "f1": 0, "support": 1}


def test_confusion_matrix_rows_are_true_columns_predicted() -> None:
    matrix = _evaluate().confusion_matrix

    assert matrix.labels == ["a", "b", "c", "x"]
    assert matrix.matrix == [
        [2, 0, 0, 0],
        [1, 1, 1, 0],
        [0, 1, 1, 0],
        [0, 1, 0, 0],
    ]


def test_auto_accept_follows_the_routing_rule() -> None:
    auto = _evaluate().auto

    assert auto.thresholds == {"a": 0.8, "b": 0.6, "c": None}  # c is not approved
    assert auto.n_auto == 4
    assert auto.coverage == pytest.approx(0.5)
    assert auto.precision == pytest.approx(0.5)
    assert auto.per_class["a"].model_dump() == pytest.approx(
        {"n_predicted": 3, "n_auto": 2, "coverage": 2 / 3, "precision": 0.5}
    )
    assert auto.per_class["b"].model_dump() == pytest.approx(
        {"n_predicted": 3, "n_auto": 2, "coverage": 2 / 3, "precision": 0.5}
    )
    assert auto.per_class["c"].model_dump() == {
        "n_predicted": 2,
        "n_auto": 0,
        "coverage": 0.0,
        "precision": None,
    }


def test_slices_are_counted_correctly() -> None:
    slices = _evaluate().slices
    expected = {
        "short_text": (4, 2 / 4, 3 / 4, 2 / 3),
        "empty_description": (4, 1 / 4, 2 / 4, 1 / 2),
        "with_description": (4, 3 / 4, 2 / 4, 1 / 2),
        "tag=a": (2, 1.0, 1 / 2, 1.0),
        "tag=b": (3, 1 / 3, 2 / 3, 1 / 2),
        "tag=c": (2, 1 / 2, 0.0, None),
        "tag=x": (1, 0.0, 1.0, 0.0),
    }

    assert set(slices) == set(expected)
    for name, (n, accuracy, coverage, precision) in expected.items():
        got = slices[name]
        assert (got.n, got.auto_precision) == (n, pytest.approx(precision)), name
        assert got.accuracy == pytest.approx(accuracy), name
        assert got.auto_coverage == pytest.approx(coverage), name
    assert slices["tag=a"].f1_weighted == pytest.approx(1.0)
    assert slices["tag=x"].f1_weighted == 0.0


@pytest.mark.parametrize(
    ("title", "description", "short"),
    [
        ("x" * 79, "", True),
        ("x" * 80, "", False),
        ("x" * 40, "y" * 39, False),  # joined with a space: 80 characters
        ("  x  ", "  ", True),
    ],
)
def test_short_text_boundary(title: str, description: str, short: bool) -> None:
    report = _evaluate([("a", [1.0, 0.0, 0.0], EvalItem(title, description))])

    assert report.slices["short_text"].n == int(short)


def test_short_text_chars_is_configurable() -> None:
    report = _evaluate(short_text_chars=1000)

    assert report.slices["short_text"].n == len(ROWS)


def test_empty_slices_are_none_never_nan() -> None:
    rows = [(tag, proba, EvalItem(item.title, "described")) for tag, proba, item in ROWS[:2]]
    report = _evaluate(rows, short_text_chars=1)

    for name in ("short_text", "empty_description", "tag=b", "tag=c"):
        assert report.slices[name].model_dump() == {
            "n": 0,
            "accuracy": None,
            "f1_weighted": None,
            "auto_coverage": None,
            "auto_precision": None,
        }
    assert "NaN" not in _json(report)


def test_nothing_auto_accepted_gives_none_precision() -> None:
    report = _evaluate(approved_tags=set())

    assert report.auto.n_auto == 0
    assert report.auto.coverage == 0.0
    assert report.auto.precision is None
    assert report.auto.thresholds == {"a": None, "b": None, "c": None}
    assert all(point.precision is None for point in report.precision_coverage)
    assert "NaN" not in _json(report)


def test_only_unknown_labels_do_not_crash() -> None:
    rows = [("zzz", proba, item) for _, proba, item in ROWS]
    report = _evaluate(rows)

    assert report.overall.accuracy == 0.0
    assert report.per_class["zzz"].support == len(ROWS)
    assert report.confusion_matrix.labels[-1] == "zzz"
    assert report.auto.precision == 0.0
    assert "NaN" not in _json(report)


def test_infinite_threshold_is_reported_as_none() -> None:
    report = _evaluate(thresholds={"a": float("inf"), "b": 0.6})

    assert report.auto.thresholds == {"a": None, "b": 0.6, "c": None}
    assert report.auto.n_auto == 2  # rows 4 and 7
    _json(report)


def test_precision_coverage_sweeps_distinct_confidences() -> None:
    curve = _evaluate().precision_coverage

    assert [p.threshold for p in curve] == pytest.approx([0.4, 0.5, 0.6, 0.7, 0.85, 0.9])
    # At 0.4 every approved top tag is accepted: rows 1, 2, 3, 4, 7, 8; right: 1, 2, 4.
    assert (curve[0].coverage, curve[0].precision) == pytest.approx((6 / 8, 3 / 6))
    # At 0.85: rows 1, 3, 7; right: 1.
    assert (curve[4].coverage, curve[4].precision) == pytest.approx((3 / 8, 1 / 3))
    assert (curve[5].coverage, curve[5].precision) == pytest.approx((2 / 8, 1 / 2))


def test_precision_coverage_is_downsampled_and_monotone() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=1000)
    y_true = [CLASSES[i] for i in rng.integers(0, 3, size=1000)]
    items = [EvalItem("t", "d")] * 1000

    curve = evaluate(y_true, proba, CLASSES, THRESHOLDS, set(CLASSES), items).precision_coverage

    assert 100 < len(curve) <= MAX_CURVE_POINTS
    thresholds = [p.threshold for p in curve]
    assert thresholds == sorted(set(thresholds))
    assert thresholds[0] == proba.max(axis=1).min()
    assert thresholds[-1] == proba.max(axis=1).max()
    coverages = [p.coverage for p in curve]
    assert coverages == sorted(coverages, reverse=True)
    assert coverages[0] == 1.0


def test_report_is_json_serialisable_and_round_trips() -> None:
    report = _evaluate()

    text = _json(report)

    assert "NaN" not in text
    assert "Infinity" not in text
    assert EvaluationReport.model_validate_json(text) == report


def test_report_is_frozen() -> None:
    report = _evaluate()

    with pytest.raises(ValueError, match="frozen"):
        report.n_items = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("rows", "proba_shape", "n_items", "message"),
    [
        (0, (0, 3), 0, "nothing to evaluate"),
        (2, (2, 2), 2, "shape"),
        (2, (2, 3), 1, "1 items for 2 labels"),
    ],
)
def test_inconsistent_inputs_are_refused(
    rows: int, proba_shape: tuple[int, int], n_items: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(
            ["a"] * rows,
            np.full(proba_shape, 0.5),
            CLASSES,
            THRESHOLDS,
            APPROVED,
            [EvalItem("t", "d")] * n_items,
        )
