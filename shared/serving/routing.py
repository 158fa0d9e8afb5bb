"""The routing rule: when the model decides alone and when a human reviews.

An item is auto-accepted when its top tag is approved and its probability reaches that
tag's calibrated threshold; everything else goes to review. Training (calibration,
evaluation), batch prediction and the classifier service all call this one function.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Route = Literal["auto", "review"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The model's verdict on one item."""

    tag: str
    confidence: float
    route: Route
    probabilities: dict[str, float]
    stage: int = 1
    """Which stage of a cascade made the decision (``shared.serving.cascade``)."""


def route_decisions(
    proba: npt.NDArray[np.floating],
    classes: Sequence[str],
    thresholds: Mapping[str, float],
    approved_tags: Collection[str],
) -> list[Decision]:
    """Decide every row of ``proba`` (items x classes).

    A class without a threshold can never be auto-accepted, so a model trained on a
    tag later removed from the approved list only ever sends that tag to review.
    """
    top = proba.argmax(axis=1)
    decisions = []
    for row, best in zip(proba, top, strict=True):
        tag = classes[best]
        confidence = float(row[best])
        auto = tag in approved_tags and confidence >= thresholds.get(tag, float("inf"))
        decisions.append(
            Decision(
                tag=tag,
                confidence=confidence,
                route="auto" if auto else "review",
                probabilities={c: float(p) for c, p in zip(classes, row, strict=True)},
            )
        )
    return decisions


def auto_mask(
    proba: npt.NDArray[np.floating],
    classes: Sequence[str],
    thresholds: Mapping[str, float],
    approved_tags: Collection[str],
) -> npt.NDArray[np.bool_]:
    """Vectorised form of the same rule: which rows are auto-accepted."""
    top = proba.argmax(axis=1)
    limits = np.array(
        [thresholds.get(c, np.inf) if c in approved_tags else np.inf for c in classes]
    )
    return np.asarray(proba[np.arange(len(top)), top] >= limits[top])
