"""Evaluation of a tagging model on a labelled split: metrics, slices and auto-accept quality.

Pure computation: :func:`evaluate` turns labels and probabilities into an
:class:`EvaluationReport`; ``shared.ml.report`` renders it to JSON, pictures and HTML.
Auto-acceptance is decided by ``shared.serving.routing.auto_mask``, the same rule serving uses.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.metrics import precision_recall_fscore_support as prfs

from shared.serving.routing import auto_mask
from shared.serving.text import prepare_text

MAX_CURVE_POINTS = 200


@dataclass(frozen=True)
class EvalItem:
    """The parts of an evaluated item that slices look at."""

    title: str
    description: str


class _Frozen(BaseModel):
    # allow_inf_nan=False: a NaN that slips through fails here, not in someone's JSON parser.
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)


class OverallMetrics(_Frozen):
    accuracy: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    precision_macro: float
    recall_macro: float
    f1_macro: float


class ClassMetrics(_Frozen):
    precision: float
    recall: float
    f1: float
    support: int


class ConfusionMatrix(_Frozen):
    """Rows are true labels, columns predicted labels, both in ``labels`` order."""

    labels: list[str]
    matrix: list[list[int]]


class ClassAutoMetrics(_Frozen):
    """Auto-acceptance among the items the model predicted as this tag."""

    n_predicted: int
    n_auto: int
    coverage: float | None
    precision: float | None


class AutoMetrics(_Frozen):
    """Quality of the auto-accept route; ``None`` thresholds mean never auto-accepted."""

    thresholds: dict[str, float | None]
    n_auto: int
    coverage: float
    precision: float | None
    per_class: dict[str, ClassAutoMetrics]


class SliceMetrics(_Frozen):
    n: int
    accuracy: float | None
    f1_weighted: float | None
    auto_coverage: float | None
    auto_precision: float | None


class CurvePoint(_Frozen):
    """Auto-accept quality if one global threshold applied to every approved tag."""

    threshold: float
    coverage: float
    precision: float | None


class EvaluationReport(_Frozen):
    n_items: int
    overall: OverallMetrics
    per_class: dict[str, ClassMetrics]
    confusion_matrix: ConfusionMatrix
    auto: AutoMetrics
    slices: dict[str, SliceMetrics]
    precision_coverage: list[CurvePoint]


def evaluate(
    y_true: Sequence[str],
    proba: npt.NDArray[np.floating],
    classes: Sequence[str],
    thresholds: Mapping[str, float],
    approved_tags: Collection[str],
    items: Sequence[EvalItem],
    short_text_chars: int = 80,
) -> EvaluationReport:
    """Evaluate predictions ``proba`` (items x classes) against the true tags ``y_true``.

    True labels outside ``classes`` count as wrong predictions and get their own row in
    the per-class metrics and the confusion matrix.
    """
    n = len(y_true)
    if n == 0:
        raise ValueError("nothing to evaluate: y_true is empty")
    if proba.shape != (n, len(classes)):
        raise ValueError(f"proba has shape {proba.shape}, expected {(n, len(classes))}")
    if len(items) != n:
        raise ValueError(f"{len(items)} items for {n} labels")

    truth = np.asarray(list(y_true), dtype=object)
    predicted = np.asarray(list(classes), dtype=object)[proba.argmax(axis=1)]
    correct = truth == predicted
    auto = auto_mask(proba, classes, thresholds, approved_tags)
    extra = sorted(set(truth.tolist()) - set(classes))
    labels = [*classes, *extra]

    precision, recall, f1, support = prfs(truth, predicted, labels=labels, zero_division=0)
    per_class = {
        label: ClassMetrics(precision=p, recall=r, f1=f, support=int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    matrix = confusion_matrix(truth, predicted, labels=labels)

    slice_masks = {
        "short_text": np.array(
            [len(prepare_text(i.title, i.description)) < short_text_chars for i in items]
        ),
        "empty_description": np.array([not i.description.strip() for i in items]),
    }
    slice_masks["with_description"] = ~slice_masks["empty_description"]
    for label in labels:
        slice_masks[f"tag={label}"] = truth == label

    return EvaluationReport(
        n_items=n,
        overall=_overall(truth, predicted),
        per_class=per_class,
        confusion_matrix=ConfusionMatrix(labels=labels, matrix=matrix.tolist()),
        auto=AutoMetrics(
            thresholds={c: _used_threshold(c, thresholds, approved_tags) for c in classes},
            n_auto=int(auto.sum()),
            coverage=float(auto.mean()),
            precision=_share(correct[auto]),
            per_class={c: _class_auto(predicted == c, auto, correct) for c in classes},
        ),
        slices={
            name: _slice(truth[mask], predicted[mask], auto[mask])
            for name, mask in slice_masks.items()
        },
        precision_coverage=_precision_coverage(proba, classes, approved_tags, correct),
    )


def _overall(truth: npt.NDArray[np.object_], predicted: npt.NDArray[np.object_]) -> OverallMetrics:
    # labels=None: averages over labels present in truth or predictions, as sklearn does.
    weighted = prfs(truth, predicted, average="weighted", zero_division=0)
    macro = prfs(truth, predicted, average="macro", zero_division=0)
    return OverallMetrics(
        accuracy=float(accuracy_score(truth, predicted)),
        precision_weighted=float(weighted[0]),
        recall_weighted=float(weighted[1]),
        f1_weighted=float(weighted[2]),
        precision_macro=float(macro[0]),
        recall_macro=float(macro[1]),
        f1_macro=float(macro[2]),
    )


def _used_threshold(
    tag: str, thresholds: Mapping[str, float], approved_tags: Collection[str]
) -> float | None:
    value = thresholds.get(tag)
    if tag not in approved_tags or value is None or not math.isfinite(value):
        return None
    return float(value)


def _share(flags: npt.NDArray[np.bool_]) -> float | None:
    """Share of true values; ``None`` for an empty array rather than NaN."""
    return float(flags.mean()) if flags.size else None


def _class_auto(
    is_class: npt.NDArray[np.bool_], auto: npt.NDArray[np.bool_], correct: npt.NDArray[np.bool_]
) -> ClassAutoMetrics:
    return ClassAutoMetrics(
        n_predicted=int(is_class.sum()),
        n_auto=int((is_class & auto).sum()),
        coverage=_share(auto[is_class]),
        precision=_share(correct[is_class & auto]),
    )


def _slice(
    truth: npt.NDArray[np.object_],
    predicted: npt.NDArray[np.object_],
    auto: npt.NDArray[np.bool_],
) -> SliceMetrics:
    if truth.size == 0:
        return SliceMetrics(
            n=0, accuracy=None, f1_weighted=None, auto_coverage=None, auto_precision=None
        )
    correct = truth == predicted
    return SliceMetrics(
        n=int(truth.size),
        accuracy=float(correct.mean()),
        f1_weighted=float(f1_score(truth, predicted, average="weighted", zero_division=0)),
        auto_coverage=float(auto.mean()),
        auto_precision=_share(correct[auto]),
    )


def _precision_coverage(
    proba: npt.NDArray[np.floating],
    classes: Sequence[str],
    approved_tags: Collection[str],
    correct: npt.NDArray[np.bool_],
) -> list[CurvePoint]:
    """Sweep one global threshold over the distinct top-tag confidences, lowest first."""
    candidates = np.unique(proba.max(axis=1))
    if candidates.size > MAX_CURVE_POINTS:
        picks = np.unique(np.linspace(0, candidates.size - 1, MAX_CURVE_POINTS).round())
        candidates = candidates[picks.astype(int)]
    points = []
    for threshold in candidates.tolist():
        auto = auto_mask(proba, classes, dict.fromkeys(classes, threshold), approved_tags)
        points.append(
            CurvePoint(
                threshold=threshold, coverage=float(auto.mean()), precision=_share(correct[auto])
            )
        )
    return points
