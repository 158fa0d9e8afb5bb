"""Calibrating the review threshold on the validation split.

The threshold is the lowest confidence at which the auto-accepted items still reach the
target precision, i.e. the largest coverage that keeps precision: everything less
confident goes to a human. ``global`` uses one threshold for every tag; ``per_class``
fits one per predicted tag and falls back to the global one where a tag has too few
validation predictions to estimate its precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Strategy = Literal["global", "per_class"]
MIN_PER_CLASS = 20
NEVER = 1.0  # no threshold reached the target: only certainty is accepted alone


@dataclass(frozen=True, slots=True)
class Calibration:
    thresholds: dict[str, float]
    strategy: Strategy
    target_precision: float
    validation_coverage: float
    validation_precision: float | None


def lowest_threshold(
    confidence: npt.NDArray[np.floating], correct: npt.NDArray[np.bool_], target: float
) -> float:
    """Lowest confidence cut whose accepted set (confidence >= cut) has precision >= target."""
    if len(confidence) == 0:
        return NEVER
    order = np.argsort(-confidence, kind="stable")
    conf, hits = confidence[order], correct[order].astype(float)
    precision = np.cumsum(hits) / np.arange(1, len(conf) + 1)
    # A cut must include every item tied at its confidence, so only the last position
    # of each run of equal confidences is a valid cut.
    last_of_tie = np.append(conf[1:] != conf[:-1], True)
    ok = np.flatnonzero(last_of_tie & (precision >= target))
    return float(conf[ok[-1]]) if len(ok) else NEVER


def calibrate(
    proba: npt.NDArray[np.floating],
    classes: Sequence[str],
    y_true: Sequence[str],
    target_precision: float,
    strategy: Strategy = "global",
) -> Calibration:
    """Choose thresholds on validation probabilities so auto-accepted precision >= target."""
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    confidence = proba.max(axis=1)
    correct = predicted == np.asarray(y_true)
    global_cut = lowest_threshold(confidence, correct, target_precision)
    thresholds = {c: global_cut for c in classes}
    if strategy == "per_class":
        for c in classes:
            mine = predicted == c
            if mine.sum() >= MIN_PER_CLASS:
                thresholds[c] = lowest_threshold(confidence[mine], correct[mine], target_precision)
    limits = np.array([thresholds[c] for c in predicted])
    accepted = confidence >= limits
    return Calibration(
        thresholds=thresholds,
        strategy=strategy,
        target_precision=target_precision,
        validation_coverage=float(accepted.mean()) if len(accepted) else 0.0,
        validation_precision=float(correct[accepted].mean()) if accepted.any() else None,
    )
