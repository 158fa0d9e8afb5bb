"""The classifier's logic: a batch of ``content.raw`` records in, the records to produce out.

Pure (no Kafka, no event loop): the consumer hands records in and produces what comes
back. Every decodable item yields one ``Classification`` (and a ``ReviewRequest`` when it
goes to humans); every record that cannot be decoded or scored yields one dead letter.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from services.classifier.model import LoadedModel, ServingSet
from services.classifier.settings import ClassifierSettings
from shared.kafka import Output, dead_letter
from shared.kafka.batch import Record
from shared.messages import (
    CONSUMER_EXTRA,
    MAX_MESSAGE_BYTES,
    NEEDS_REVIEW,
    Classification,
    ContentItem,
    MessageError,
    MessageErrorKind,
    ReviewRequest,
)
from shared.serving.cascade import decide_cascade
from shared.serving.routing import Decision, Route, route_decisions
from shared.serving.text import prepare_text
from shared.settings import Settings

STAGE_DECODE = "classifier.decode"
STAGE_INFERENCE = "classifier.inference"
# A dead letter carries the original bytes base64-encoded (4/3 larger); beyond this many
# bytes it keeps only the head, so that the letter itself stays under the broker's 1 MB.

Clock = Callable[[], datetime]
ReviewReason = Literal["low_confidence", "unapproved_tag", "audit"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Routing:
    """Where outputs go and which tags may leave the system (from settings)."""

    approved_tags: tuple[str, ...]
    topic_classified: str
    topic_review: str
    topic_dlq: str
    topic_shadow: str = "content.shadow"
    max_title_chars: int = 300
    max_description_chars: int = 5000
    audit_share: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Routing:
        return cls(
            audit_share=(
                settings.classifier_audit_share if isinstance(settings, ClassifierSettings) else 0.0
            ),
            approved_tags=settings.approved_tags,
            topic_classified=settings.topic_classified,
            topic_review=settings.topic_review,
            topic_dlq=settings.topic_dlq,
            topic_shadow=settings.topic_shadow,
            max_title_chars=settings.max_title_chars,
            max_description_chars=settings.max_description_chars,
        )


@dataclass(frozen=True, slots=True)
class Decided:
    """One item's outcome, for metrics and logs."""

    item_id: str
    route: Route
    tag: str
    latency_seconds: float
    model_version: str = ""
    role: str = "stable"
    stage: int = 1


@dataclass(slots=True)
class ModelStats:
    """What one model did in a batch (every model scores every item while a canary runs)."""

    model_version: str
    role: str
    inference_seconds: float = 0.0
    scored: int = 0
    errors: int = 0
    predictions: dict[tuple[str, str], int] = field(default_factory=dict)
    """(top tag, route as this model would route) -> items."""
    agree: int = 0
    disagree: int = 0
    """The canary's top tag against the stable model's, item by item."""
    stage2_items: int = 0
    stage2_seconds: float = 0.0
    stage2_errors: int = 0
    """Items stage 2 re-decided (stage 1 was unsure of them) and the time it took."""


class InferenceErrorKind(StrEnum):
    """Why a decoded item could not be scored (the decode kinds are ``MessageErrorKind``)."""

    FAILED = "inference_error"


RejectionKind = MessageErrorKind | InferenceErrorKind
"""Why a record was dead-lettered; its value is the ``reason_kind`` metric label."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """One record sent to the dead-letter topic, for metrics and logs."""

    stage: str
    reason_kind: RejectionKind
    reason: str
    partition: int
    offset: int
    item_id: str | None = None


@dataclass(slots=True)
class BatchResult:
    """What to produce for one batch, and what happened, for metrics."""

    outputs: list[Output] = field(default_factory=list)
    decided: list[Decided] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    inference_seconds: float = 0.0
    items_scored: int = 0
    models: list[ModelStats] = field(default_factory=list)


def classify_batch(
    records: Sequence[Record],
    serving: ServingSet | LoadedModel,
    routing: Routing,
    *,
    clock: Clock = utc_now,
) -> BatchResult:
    """Decode, score and route ``records``; returns every output to produce.

    With a canary, both models score every item (so their predictions, latencies and
    agreement are compared on the same items); the canary decides its share of items,
    chosen by a hash of the item id, or none in shadow mode. The version that did not
    decide an item has its answer recorded on the shadow topic, so every item a person
    labels carries both versions' answers and the rollout can compare them paired. An
    item the canary cannot score is decided by the stable model; one the stable model
    cannot score goes to the DLQ.
    """
    if isinstance(serving, LoadedModel):
        serving = ServingSet(stable=serving)
    result = BatchResult()
    items: list[ContentItem] = []
    sources: list[Record] = []
    for record in records:
        try:
            item = _decode(record.value)
        except MessageError as exc:
            _reject(result, routing, record, STAGE_DECODE, exc.kind, exc.reason)
            continue
        too_long = _too_long(item, routing)
        if too_long:
            invalid = MessageErrorKind.INVALID_FIELD
            _reject(result, routing, record, STAGE_DECODE, invalid, too_long, item.item_id)
            continue
        items.append(item)
        sources.append(record)
    if not items:
        return result

    texts = [prepare_text(item.title, item.description) for item in items]
    stable, stable_stats = _score(serving.stable, texts, routing)
    result.models.append(stable_stats)
    result.inference_seconds = stable_stats.inference_seconds
    canary = None
    if serving.canary is not None:
        canary, canary_stats = _score(serving.canary, texts, routing)
        result.models.append(canary_stats)
        _tally_agreement(canary_stats, stable, canary)
    decided_at = clock()
    for index, item in enumerate(items):
        mine = stable.decisions[index]
        if mine is None:
            reason = stable.failed[index]
            failed = InferenceErrorKind.FAILED
            _reject(result, routing, sources[index], STAGE_INFERENCE, failed, reason, item.item_id)
            continue
        theirs = canary.decisions[index] if canary is not None else None
        decider, decision = serving.stable, mine
        if theirs is not None and serving.canary is not None:
            other, answer = serving.canary, theirs
            if not serving.shadow and in_share(
                item.item_id, serving.canary_weight, salt=CANARY_SALT
            ):
                decider, decision, other, answer = serving.canary, theirs, serving.stable, mine
            _shadow(result, routing, other, item, answer, decided_at)
        _decide(result, routing, decider, item, decision, decided_at)
        result.items_scored += 1
    return result


CANARY_SALT = b"canary:"
"""Keeps the canary's share independent of the audit sample, which hashes the bare id."""


@dataclass(slots=True)
class _Scores:
    decisions: list[Decision | None]
    failed: dict[int, str]


def _score(model: LoadedModel, texts: list[str], routing: Routing) -> tuple[_Scores, ModelStats]:
    stats = ModelStats(model.name, model.role)
    started = time.perf_counter()
    proba, failed = _predict(model, texts)
    stats.inference_seconds = time.perf_counter() - started
    ok = [i for i in range(len(texts)) if i not in failed]
    decisions: list[Decision | None] = [None] * len(texts)
    routed = route_decisions(proba[ok], model.classes, model.thresholds, routing.approved_tags)
    if model.stage2 is not None:
        started = time.perf_counter()
        try:
            outcome = decide_cascade(
                [texts[i] for i in ok], routed, model.stage2, routing.approved_tags
            )
        except Exception:  # stage 1's decisions stand: its doubtful items go to people
            stats.stage2_errors = sum(1 for d in routed if d.route == "review")
        else:
            routed = outcome.decisions
            stats.stage2_items = outcome.stage2_items
            stats.stage2_seconds = outcome.stage2_seconds
        stats.inference_seconds += time.perf_counter() - started
    for index, decision in zip(ok, routed, strict=True):
        decisions[index] = decision
        tag = decision.tag if decision.tag in routing.approved_tags else "unapproved"
        key = (tag, decision.route)
        stats.predictions[key] = stats.predictions.get(key, 0) + 1
    stats.scored, stats.errors = len(ok), len(failed)
    return _Scores(decisions, failed), stats


def _tally_agreement(stats: ModelStats, stable: _Scores, canary: _Scores) -> None:
    for mine, theirs in zip(stable.decisions, canary.decisions, strict=True):
        if mine is not None and theirs is not None:
            if mine.tag == theirs.tag:
                stats.agree += 1
            else:
                stats.disagree += 1


def _decode(raw: bytes | None) -> ContentItem:
    """``ContentItem.decode``, with pydantic's own JSON parser on the happy path.

    Parsing and validating in one step is the cheapest way in (decoding was the largest
    share of a batch in the profile). Lenient like ``decode`` (unknown fields dropped). A
    record it refuses goes through ``decode`` again, so dead letters carry exactly the
    reason every other consumer would give.
    """
    if raw is not None and len(raw) <= MAX_MESSAGE_BYTES:
        try:
            return ContentItem.model_validate_json(raw, extra=CONSUMER_EXTRA)
        except ValidationError:
            pass
    return ContentItem.decode(raw)


def _too_long(item: ContentItem, routing: Routing) -> str | None:
    """The ingest limits, for records written to the topic directly rather than via ingest."""
    if len(item.title) > routing.max_title_chars:
        return f"invalid title: longer than {routing.max_title_chars} characters"
    if len(item.description) > routing.max_description_chars:
        return f"invalid description: longer than {routing.max_description_chars} characters"
    return None


def _predict(
    model: LoadedModel, texts: list[str]
) -> tuple[npt.NDArray[np.floating], dict[int, str]]:
    """Probabilities for ``texts``; if the batch fails, item by item, naming the failures."""
    try:
        return np.asarray(model.tagger.predict_proba(texts)), {}
    except Exception:  # one bad text must not stop the others: one by one below  # nosec B110
        pass
    rows = np.zeros((len(texts), len(model.classes)))
    failed: dict[int, str] = {}
    for index, text in enumerate(texts):
        try:
            rows[index] = model.tagger.predict_proba([text])[0]
        except Exception as exc:  # the record goes to the DLQ, with the reason
            failed[index] = f"inference failed: {type(exc).__name__}: {exc}"[:500]
    return rows, failed


def in_share(item_id: str, share: float, *, salt: bytes = b"") -> bool:
    """Whether an item falls in a ``share`` of all items: a hash of its id below it.

    Deterministic, so a redelivered item gets the same answer.
    """
    if share <= 0:
        return False
    digest = hashlib.sha256(salt + item_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def in_audit_sample(item_id: str, share: float) -> bool:
    """Whether an auto-accepted item is also sent to review as part of the audit sample."""
    return in_share(item_id, share)


def _classification(
    routing: Routing,
    model: LoadedModel,
    item: ContentItem,
    decision: Decision,
    decided_at: datetime,
) -> Classification:
    approved = routing.approved_tags
    top_is_approved = decision.tag in approved
    # route_decisions never auto-accepts an unapproved tag; checked again because
    # emitting one would break the system's first promise.
    auto = decision.route == "auto" and top_is_approved
    latency = max(0.0, (decided_at - item.received_at).total_seconds())
    # Built without re-validating what this function just computed (a measurable share
    # of the hot path); the tests decode every output with the strict models.
    return Classification.model_construct(
        item_id=item.item_id,
        tag=decision.tag if auto else NEEDS_REVIEW,
        route="auto" if auto else "review",
        # float rounding may put a probability a hair above 1, which the message refuses
        confidence=min(1.0, max(0.0, decision.confidence)),
        predicted_tag=decision.tag if top_is_approved else None,
        probabilities={t: decision.probabilities.get(t, 0.0) for t in approved},
        model_version=model.name,
        role=model.role,
        stage=decision.stage,
        latency_ms=latency * 1000,
        decided_at=decided_at,
    )


def _decide(
    result: BatchResult,
    routing: Routing,
    model: LoadedModel,
    item: ContentItem,
    decision: Decision,
    decided_at: datetime,
) -> None:
    classification = _classification(routing, model, item, decision, decided_at)
    key = item.item_id.encode()
    result.outputs.append(Output(routing.topic_classified, key, classification.encode()))
    auto = classification.route == "auto"
    audit = auto and in_audit_sample(item.item_id, routing.audit_share)
    if not auto or audit:
        # An audited item stays auto-accepted; the review is a sample of auto decisions.
        predicted = classification.predicted_tag
        reason: ReviewReason = (
            "audit" if audit else "low_confidence" if predicted else "unapproved_tag"
        )
        request = ReviewRequest.model_construct(
            item_id=item.item_id,
            title=item.title,
            description=item.description,
            url=item.url,
            reason=reason,
            predicted_tag=predicted,
            confidence=classification.confidence,
            probabilities=classification.probabilities,
            model_version=model.name,
            received_at=item.received_at,
            requested_at=decided_at,
        )
        result.outputs.append(Output(routing.topic_review, key, request.encode()))
    result.decided.append(
        Decided(
            item.item_id,
            "auto" if auto else "review",  # the model's routes (a human's is not its own)
            classification.tag,
            latency_seconds=classification.latency_ms / 1000,
            model_version=model.name,
            role=model.role,
            stage=decision.stage,
        )
    )


def _shadow(
    result: BatchResult,
    routing: Routing,
    model: LoadedModel,
    item: ContentItem,
    decision: Decision,
    decided_at: datetime,
) -> None:
    """The answer of the version that did not decide the item: recorded, never acted on.

    The canary's in shadow mode; otherwise whichever of the two the split did not pick.
    """
    classification = _classification(routing, model, item, decision, decided_at)
    result.outputs.append(
        Output(routing.topic_shadow, item.item_id.encode(), classification.encode())
    )


def _reject(
    result: BatchResult,
    routing: Routing,
    record: Record,
    stage: str,
    kind: RejectionKind,
    reason: str,
    item_id: str | None = None,
) -> None:
    letter = dead_letter(record, stage=stage, error=reason, dlq_topic=routing.topic_dlq, kind=kind)
    result.outputs.append(letter)
    result.rejected.append(Rejected(stage, kind, reason, record.partition, record.offset, item_id))
