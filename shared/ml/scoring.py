"""Batch scoring with a registered model: the engine behind ``tagstream model predict``.

Serving code loads models from the registry only (the artifact's sha256 is verified on
every load), never from a training run's folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import joblib
import numpy as np
import numpy.typing as npt

from shared.ml.onnx_export import OnnxTagger
from shared.ml.routing import route_decisions
from shared.ml.text import normalise, prepare_text
from shared.registry import ModelRegistry, ModelVersion
from shared.settings import Settings

Engine = Literal["onnx", "sklearn"]
CHUNK = 1024


class Tagger(Protocol):
    @property
    def classes(self) -> list[str]: ...

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.floating[Any]]: ...


@dataclass(frozen=True, slots=True)
class SklearnTagger:
    """The scikit-learn reference pipeline behind the same interface as ``OnnxTagger``."""

    pipeline: Any

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.pipeline.classes_]

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.floating[Any]]:
        if not texts:
            return np.zeros((0, len(self.classes)))
        return np.asarray(self.pipeline.predict_proba(list(texts)))


def load_tagger(registry: ModelRegistry, version: ModelVersion, engine: Engine = "onnx") -> Tagger:
    if engine == "onnx":
        return OnnxTagger(registry.artifact_path(version.version, "model.onnx"))
    return SklearnTagger(joblib.load(registry.artifact_path(version.version, "pipeline.joblib")))


def row_error(row: Mapping[str, str | None], settings: Settings) -> str | None:
    """Why a row cannot be scored, naming the field, or None when it can."""
    title = normalise(row.get("title") or "")
    description = normalise(row.get("description") or "")
    if not title:
        return "title: must not be empty"
    if len(title) > settings.max_title_chars:
        return f"title: longer than {settings.max_title_chars} characters"
    if len(description) > settings.max_description_chars:
        return f"description: longer than {settings.max_description_chars} characters"
    return None


def score_rows(
    rows: Iterable[Mapping[str, str | None]],
    tagger: Tagger,
    version: ModelVersion,
    settings: Settings,
) -> Iterator[dict[str, object]]:
    """One result per input row, in input order: a decision, or an error naming the field."""
    pending: list[tuple[str, str]] = []
    for number, row in enumerate(rows, start=1):
        item_id = (row.get("id") or "").strip() or f"row-{number}"
        error = row_error(row, settings)
        if error:
            yield from _decide(pending, tagger, version, settings)
            pending.clear()
            yield {"id": item_id, "row": number, "error": error}
            continue
        pending.append((item_id, prepare_text(row.get("title") or "", row.get("description"))))
        if len(pending) >= CHUNK:
            yield from _decide(pending, tagger, version, settings)
            pending.clear()
    yield from _decide(pending, tagger, version, settings)


def _decide(
    pending: Sequence[tuple[str, str]], tagger: Tagger, version: ModelVersion, settings: Settings
) -> Iterator[dict[str, object]]:
    if not pending:
        return
    proba = tagger.predict_proba([text for _, text in pending])
    decisions = route_decisions(proba, tagger.classes, version.thresholds, settings.approved_tags)
    for (item_id, _), decision in zip(pending, decisions, strict=True):
        approved = decision.tag in settings.approved_tags
        yield {
            "id": item_id,
            # a tag outside the approved list never leaves the system
            "tag": decision.tag if approved else "needs_review",
            "probabilities": {
                t: decision.probabilities.get(t, 0.0) for t in settings.approved_tags
            },
            "confidence": decision.confidence,
            "route": decision.route,
            "model_version": version.version,
        }
