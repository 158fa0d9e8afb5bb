from __future__ import annotations

import numpy as np
import pytest

from shared.ml.calibration import NEVER, calibrate, lowest_threshold

CLASSES = ["a", "b"]


def test_lowest_threshold_takes_largest_coverage_at_target() -> None:
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, True, True, False, True])
    # top-4 are all right; adding 0.7 drops precision to 0.8; 5/6 = 0.83
    assert lowest_threshold(conf, correct, 0.97) == 0.8
    assert lowest_threshold(conf, correct, 0.8) == 0.6


def test_ties_are_accepted_or_rejected_together() -> None:
    conf = np.array([0.9, 0.8, 0.8])
    correct = np.array([True, True, False])
    assert lowest_threshold(conf, correct, 0.97) == 0.9


def test_unreachable_target_accepts_nothing() -> None:
    conf = np.array([0.9, 0.8])
    assert lowest_threshold(conf, np.array([False, True]), 0.97) == NEVER
    assert lowest_threshold(np.array([]), np.array([], dtype=bool), 0.97) == NEVER


def test_calibrate_global_meets_target_on_validation() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1.0, 400)
    proba = np.column_stack([p, 1 - p])
    # correctness grows with confidence, as in a calibrated model
    y = np.where(rng.uniform(size=400) < p, "a", "b")
    cal = calibrate(proba, CLASSES, list(y), 0.9)
    assert cal.validation_precision is not None
    assert cal.validation_precision >= 0.9
    assert 0 < cal.validation_coverage < 1
    assert set(cal.thresholds) == set(CLASSES)


@pytest.mark.parametrize("strategy", ["global", "per_class"])
def test_calibrate_perfect_model_accepts_everything(strategy: str) -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8]] * 20)
    y = ["a", "b"] * 20
    cal = calibrate(proba, CLASSES, y, 0.97, strategy)  # type: ignore[arg-type]
    assert cal.validation_coverage == 1.0
    assert cal.validation_precision == 1.0


def test_per_class_thresholds_differ_when_classes_differ() -> None:
    # class a is always right; class b is right only above 0.9
    proba = np.array([[0.6, 0.4]] * 30 + [[0.05, 0.95]] * 30 + [[0.3, 0.7]] * 30)
    y = ["a"] * 30 + ["b"] * 30 + ["a"] * 30
    cal = calibrate(proba, CLASSES, y, 0.97, "per_class")
    assert cal.thresholds["a"] == pytest.approx(0.6)
    assert cal.thresholds["b"] == pytest.approx(0.95)
