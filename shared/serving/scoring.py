"""Batch scoring with a registered model: the engine behind ``tagstream model predict``.

Serving code loads models from the registry only (the artifact's sha256 is verified on
every load), never from a training run's folder. The scikit-learn reference engine
(``--engine sklearn``) is training's and lives in ``shared.ml.scoring``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from shared.registry import ModelRegistry, ModelVersion
from shared.registry.models import MODEL_ARTIFACT
from shared.serving.cascade import Stage2, decide_cascade, has_cascade, load_stage2
from shared.serving.onnx_tagger import OnnxTagger, Tagger
from shared.serving.routing import route_decisions
from shared.serving.text import normalise, prepare_text
from shared.settings import Settings

CHUNK = 1024


def load_onnx_tagger(registry: ModelRegistry, version: ModelVersion) -> OnnxTagger:
    """``version``'s ONNX model, its bytes verified against the registered sha256."""
    return OnnxTagger(registry.artifact_path(version.version, MODEL_ARTIFACT))


def load_cascade_stage2(
    registry: ModelRegistry, version: ModelVersion, settings: Settings
) -> Stage2 | None:
    """``version``'s stage 2 when it has one and ``TAGSTREAM_CASCADE_ENABLED`` is on."""
    if not settings.cascade_enabled or not has_cascade(version):
        return None
    return load_stage2(registry, version, threads=settings.cascade_threads)


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
    stage2: Stage2 | None = None,
) -> Iterator[dict[str, object]]:
    """One result per input row, in input order: a decision, or an error naming the field.

    With ``stage2`` (a cascade), the rows stage 1 would send to review are re-decided by it.
    """
    pending: list[tuple[str, str]] = []
    for number, row in enumerate(rows, start=1):
        item_id = (row.get("id") or "").strip() or f"row-{number}"
        error = row_error(row, settings)
        if error:
            yield from _decide(pending, tagger, version, settings, stage2)
            pending.clear()
            yield {"id": item_id, "row": number, "error": error}
            continue
        pending.append((item_id, prepare_text(row.get("title") or "", row.get("description"))))
        if len(pending) >= CHUNK:
            yield from _decide(pending, tagger, version, settings, stage2)
            pending.clear()
    yield from _decide(pending, tagger, version, settings, stage2)


def _decide(
    pending: Sequence[tuple[str, str]],
    tagger: Tagger,
    version: ModelVersion,
    settings: Settings,
    stage2: Stage2 | None,
) -> Iterator[dict[str, object]]:
    if not pending:
        return
    texts = [text for _, text in pending]
    proba = tagger.predict_proba(texts)
    decisions = route_decisions(proba, tagger.classes, version.thresholds, settings.approved_tags)
    decisions = decide_cascade(texts, decisions, stage2, settings.approved_tags).decisions
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
            "stage": decision.stage,
            "model_version": version.version,
        }
