"""Evaluating registered versions on any labelled CSV: ``tagstream model evaluate``.

The CSV needs ``title`` and ``tag`` only (``description`` and ``id`` are used when
present; other columns are ignored); a few dozen rows are fine, their intervals say how
little they prove. Every row is checked before anything is scored, and all problems are
reported at once (:class:`~shared.ml.data.DataError`).

Rows whose text a version fitted on (train or validation, ``fitted_texts.json``) make
that version look better than it is; they are counted and can be left out
(``unseen_only``). Two versions are compared paired, on the same rows, by
``shared.ml.scorecard.compare_paired``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from shared.ml.data import DataError, LabeledItem, parse_csv, read_text
from shared.ml.evaluation import EvalItem, EvaluationReport, evaluate
from shared.ml.gate import FITTED_ARTIFACT, read_fitted_texts, read_fitted_titles, text_digest
from shared.ml.predictor import Predictor, ThresholdPredictor
from shared.ml.scorecard import Scorecard, score
from shared.ml.scoring import load_tagger
from shared.registry import ModelRegistry, ModelVersion
from shared.serving.onnx_tagger import Tagger
from shared.serving.text import prepare_text

EVALUATION_COLUMNS = ("title", "tag")


def load_labelled_csv(location: str, approved_tags: Collection[str]) -> list[LabeledItem]:
    """Every row of a labelled CSV as an item, or a DataError listing every bad row."""
    rows = parse_csv(read_text(location), required=EVALUATION_COLUMNS)
    return labelled_items(rows, approved_tags)


def labelled_items(
    rows: Sequence[dict[str, str]], approved_tags: Collection[str]
) -> list[LabeledItem]:
    problems: list[str] = []
    items: list[LabeledItem] = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        item_id = (row.get("id") or "").strip() or f"line-{line}"
        title, description = row.get("title") or "", row.get("description") or ""
        tag = (row.get("tag") or "").strip()
        if not prepare_text(title, description):
            problems.append(f"line {line}: title and description have no words")
        elif not tag:
            problems.append(f"line {line}: empty tag")
        elif tag not in approved_tags:
            problems.append(
                f"line {line}: unknown tag {tag!r} (approved: {', '.join(approved_tags)})"
            )
        else:
            items.append(LabeledItem(item_id, title, description, tag))
    if problems:
        raise DataError(f"the evaluation data has {len(problems)} problem(s)", problems)
    if not items:
        raise DataError("the evaluation data has no rows")
    return items


def load_predictor(
    registry: ModelRegistry, version: ModelVersion, approved_tags: Collection[str]
) -> tuple[Predictor, Tagger]:
    """The version as evaluation scores it, and its tagger for the probability report.

    The one place that knows what a registered version is made of: a cascade version
    returns its cascade here."""
    tagger = load_tagger(registry, version)
    return ThresholdPredictor(tagger, version.thresholds, approved_tags, version.version), tagger


def fitted_rows(
    registry: ModelRegistry, version: ModelVersion, items: Sequence[LabeledItem]
) -> list[bool] | None:
    """Per item, whether ``version`` fitted on its text, or on an item with its title (an
    evaluation CSV often carries titles alone); None when the version does not record
    what it fitted on (registered before it did)."""
    if FITTED_ARTIFACT not in version.artifacts:
        return None
    raw = registry.artifact_bytes(version.version, FITTED_ARTIFACT)
    texts, titles = read_fitted_texts(raw), read_fitted_titles(raw)
    return [
        text_digest(item.text) in texts or text_digest(prepare_text(item.title)) in titles
        for item in items
    ]


@dataclass(frozen=True, slots=True)
class VersionEvaluation:
    version: str
    report: EvaluationReport
    scorecard: Scorecard
    right: list[bool]
    """Per item, in input order: is the version's tag the true one (for paired tests)."""


def evaluate_version(
    registry: ModelRegistry,
    version: ModelVersion,
    items: Sequence[LabeledItem],
    approved_tags: Collection[str],
) -> VersionEvaluation:
    predictor, tagger = load_predictor(registry, version, approved_tags)
    texts, tags = [i.text for i in items], [i.tag for i in items]
    predictions = predictor.predict(texts)
    report = evaluate(
        tags,
        tagger.predict_proba(texts),
        tagger.classes,
        version.thresholds,
        approved_tags,
        [EvalItem(title=i.title, description=i.description) for i in items],
    )
    return VersionEvaluation(
        version=version.version,
        report=report,
        scorecard=score(predictor, texts, tags, predictions=predictions),
        right=[p.tag == t for p, t in zip(predictions, tags, strict=True)],
    )
