"""The parity gate: an exported model must agree with its scikit-learn pipeline.

A model is only registered when, on every given text, the ONNX and scikit-learn top labels
are identical and no class probability differs by more than the tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from shared.serving.onnx_tagger import OnnxTagger

if TYPE_CHECKING:  # only annotated: the CLI reads ParityError without loading scikit-learn
    from sklearn.pipeline import Pipeline

DEFAULT_PARITY_TOLERANCE = 1e-4


class ParityError(ValueError):
    """The ONNX model disagrees with the scikit-learn pipeline it was exported from."""


class ParityReport(BaseModel):
    """How closely the ONNX model reproduced the pipeline on ``n_items`` texts."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    n_items: int
    label_mismatches: int
    max_abs_diff: float
    tolerance: float
    classes_match: bool = True
    worst_item: int | None = None  # index of the text with the largest difference


def check_parity(
    pipeline: Pipeline,
    model: bytes,
    texts: Sequence[str],
    tolerance: float = DEFAULT_PARITY_TOLERANCE,
) -> ParityReport:
    """Compare both engines on ``texts`` (prepared). Needs at least one text."""
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if len(texts) == 0:
        raise ValueError("parity needs at least one text to compare on")
    tagger = OnnxTagger(model)
    expected_classes = [str(c) for c in pipeline.classes_]
    onnx_proba = tagger.predict_proba(texts).astype(np.float64)
    sklearn_proba = np.asarray(pipeline.predict_proba(list(texts)), dtype=np.float64)
    n = len(texts)
    if tagger.classes != expected_classes or onnx_proba.shape != sklearn_proba.shape:
        return ParityReport(
            passed=False, n_items=n, label_mismatches=n, max_abs_diff=float("inf"),
            tolerance=tolerance, classes_match=False,
        )  # fmt: skip
    diff = np.abs(onnx_proba - sklearn_proba).max(axis=1)
    diff[~np.isfinite(diff)] = np.inf  # NaN from either side is a failure, never a pass
    worst = int(diff.argmax())
    mismatches = int((onnx_proba.argmax(axis=1) != sklearn_proba.argmax(axis=1)).sum())
    max_diff = float(diff[worst])
    return ParityReport(
        passed=mismatches == 0 and max_diff <= tolerance,
        n_items=n,
        label_mismatches=mismatches,
        max_abs_diff=max_diff,
        tolerance=tolerance,
        worst_item=worst,
    )


def assert_parity(
    pipeline: Pipeline,
    model: bytes,
    texts: Sequence[str],
    tolerance: float = DEFAULT_PARITY_TOLERANCE,
) -> ParityReport:
    """``check_parity``, raising ``ParityError`` with the figures when the gate fails."""
    report = check_parity(pipeline, model, texts, tolerance)
    if report.passed:
        return report
    if not report.classes_match:
        raise ParityError(
            "ONNX parity failed: the model's classes or output shape differ from the pipeline's"
        )
    raise ParityError(
        f"ONNX parity failed on {report.n_items} texts: {report.label_mismatches} label "
        f"mismatch(es), max |p_onnx - p_sklearn| = {report.max_abs_diff:.3g} "
        f"(tolerance {report.tolerance:.3g}, worst text #{report.worst_item})"
    )
