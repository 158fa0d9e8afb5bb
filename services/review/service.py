"""The review logic: claim, label, skip, undo, progress and stats, on a caller's session.

Every function runs inside the caller's unit of work (``with sessions.begin() as s:``)
whose session must come from ``make_session_factory(engine, immediate=True)`` so that on
SQLite the transaction holds the write lock from BEGIN (see repository.py).

Configuration (approved tags, lease, undo window, priority, feedback topic, metrics) is a
``ReviewPolicy``: passed as ``policy=``, or else taken from ``session.info["review_policy"]``
(the app's session factory puts it there), or else the defaults.

A label is two messages, both through the outbox after commit, keyed by item id: the
FeedbackLabel for ``feedback.labels`` (training) and the human decision for
``content.classified`` (downstream: route ``human``, the label as ``tag``, the reviewed
model version, the label id, the time from ingest). Every label makes a decision, an
audit label too: one that disagrees with the auto-accepted tag corrects it, one that
agrees confirms it.

Undo: undoing a label not yet relayed cancels its outbox rows, so nothing is sent.
Undoing one already relayed sends nothing either; the item goes back to the reviewer,
whose next label of it is sent as a new FeedbackLabel and a new decision. Consumers keep
the latest decision per item (and the gold store the latest label per item and labeler),
so that corrected decision replaces the undone one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import cast

from sqlalchemy.orm import Session

from services.review.metrics import ReviewMetrics
from services.review.repository import Priority, ReviewRepository
from services.review.schemas import ClaimedItem, Progress, ReviewStats, StoredLabel
from services.review.tables import ReviewItemRow, ReviewLabelRow, ReviewOutboxRow
from shared.messages import HUMAN, Classification, FeedbackLabel, ReviewRequest
from shared.messages.classified import HUMAN_DECISION_VERSION
from shared.messages.review import ReviewReason
from shared.settings import DEFAULT_TAGS

POLICY_KEY = "review_policy"


class NotHolder(Exception):
    """The reviewer does not hold an unexpired claim on the item (HTTP 409)."""


class UnknownTag(ValueError):
    """The tag is not an approved tag (HTTP 422, field ``tag``)."""


class NothingToUndo(Exception):
    """No label of the reviewer's can be undone now (HTTP 409)."""


@dataclass(frozen=True)
class ReviewPolicy:
    """The knobs the review logic needs, built from ReviewSettings at start-up."""

    approved_tags: tuple[str, ...] = DEFAULT_TAGS
    lease: timedelta = timedelta(seconds=300)
    undo_window: timedelta = timedelta(seconds=120)
    priority: Priority = "confidence"
    labels_per_item: int = 1
    feedback_topic: str = "feedback.labels"
    decisions_topic: str = "content.classified"
    metrics: ReviewMetrics | None = field(default=None, compare=False)


def policy_of(session: Session, policy: ReviewPolicy | None = None) -> ReviewPolicy:
    if policy is not None:
        return policy
    found = session.info.get(POLICY_KEY)
    return found if isinstance(found, ReviewPolicy) else ReviewPolicy()


def store_request(
    session: Session, request: ReviewRequest, now: datetime, traceparent: str | None = None
) -> bool:
    """Queue a review request; True when it changed the queue.

    ``traceparent`` (the request's, see ``shared.observability.tracing.traceparent_of``)
    is kept with the item, and its label is sent under it; a reopened item takes the
    newer request's, a merged report keeps the waiting item's.

    A repeated request for a known item is ignored (re-delivery), except a *newer* request
    for an item already labeled: that is the feedback service asking for a second opinion
    on conflicting labels, or passing on an end user's report, and the item goes back to
    the queue for reviewers who have not labeled it since. A user report of an item still
    waiting is merged into it: the item keeps its place in the data and moves ahead in the
    claim order, with the report shown.
    """
    repo = ReviewRepository(session)
    report = (
        {
            "suggested_tag": request.suggested_tag,
            "report_comment": request.comment,
            "report_count": request.report_count,
        }
        if request.reason == "user_report"
        else None
    )
    inserted = repo.insert_item(
        {
            "item_id": request.item_id,
            "title": request.title,
            "description": request.description,
            "url": request.url,
            "reason": request.reason,
            "predicted_tag": request.predicted_tag,
            "confidence": request.confidence,
            "probabilities": dict(request.probabilities),
            "model_version": request.model_version,
            "audit": request.reason == "audit",
            "received_at": request.received_at,
            "requested_at": request.requested_at,
            "enqueued_at": now,
            "state": "pending",
            "traceparent": traceparent,
            **(report or {}),
        }
    )
    if inserted:
        return True
    if report is not None and repo.merge_report(request.item_id, request.requested_at, report):
        return True
    return repo.reopen(request.item_id, request.requested_at, request.reason, report, traceparent)


def claim_next(
    session: Session, reviewer: str, now: datetime, *, policy: ReviewPolicy | None = None
) -> ClaimedItem | None:
    """The item ``reviewer`` holds, else the next claimable one (now held), else None."""
    p = policy_of(session, policy)
    repo = ReviewRepository(session)
    row = repo.held_by(reviewer, now)
    result = "held"
    if row is None:
        row = repo.claim_next(reviewer, now, p.lease, p.priority)
        result = "claimed" if row is not None else "empty"
    if p.metrics is not None:
        p.metrics.claims.labels(result=result).inc()
    return None if row is None else _claimed(row, repo.queue_depth())


def label_item(
    session: Session,
    reviewer: str,
    item_id: str,
    tag: str,
    now: datetime,
    *,
    policy: ReviewPolicy | None = None,
) -> StoredLabel:
    """Store ``reviewer``'s label of the item they hold; queue it for feedback.labels and
    as the item's human decision for content.classified."""
    p = policy_of(session, policy)
    if tag not in p.approved_tags:
        raise UnknownTag(f"not an approved tag: {', '.join(p.approved_tags)}")
    repo = ReviewRepository(session)
    row = _held(repo, reviewer, item_id, now)
    claimed_at = row.claimed_at or now
    seconds = max(0.0, (now - claimed_at).total_seconds())
    label = ReviewLabelRow(
        label_id=uuid.uuid4().hex,
        item_id=item_id,
        reviewer=reviewer,
        tag=tag,
        predicted_tag=row.predicted_tag,
        model_version=row.model_version,
        audit=row.audit,
        claimed_at=claimed_at,
        decided_at=now,
        decision_seconds=seconds,
    )
    message = FeedbackLabel(
        label_id=label.label_id,
        item_id=item_id,
        tag=tag,
        source="reviewer",
        labeler=reviewer,
        model_version=row.model_version,
        predicted_tag=row.predicted_tag,
        audit=row.audit,
        decision_seconds=seconds,
        labeled_at=now,
    )
    decision = human_decision(row, label)
    repo.add_label(
        label,
        *(
            ReviewOutboxRow(
                label_id=label.label_id,
                topic=topic,
                key=item_id,
                payload=payload.model_dump(mode="json", exclude_none=True),
                created_at=now,
                traceparent=row.traceparent,
            )
            for topic, payload in ((p.feedback_topic, message), (p.decisions_topic, decision))
        ),
    )
    repo.release(row)
    if repo.active_labels(item_id) >= p.labels_per_item:
        row.state = "labeled"
    session.flush()
    return StoredLabel(
        label_id=label.label_id,
        item_id=item_id,
        tag=tag,
        reviewer=reviewer,
        decided_at=now,
        decision_seconds=seconds,
    )


def human_decision(item: ReviewItemRow, label: ReviewLabelRow) -> Classification:
    """The decision ``label`` makes on ``item``, with the model's guess it reviewed."""
    latency = max(0.0, (label.decided_at - item.received_at).total_seconds())
    return Classification(
        schema_version=HUMAN_DECISION_VERSION,
        item_id=item.item_id,
        tag=label.tag,
        route=HUMAN,
        confidence=item.confidence,
        predicted_tag=item.predicted_tag,
        probabilities=dict(item.probabilities),
        model_version=item.model_version,
        latency_ms=latency * 1000,
        decided_at=label.decided_at,
        label_id=label.label_id,
    )


def skip_item(
    session: Session,
    reviewer: str,
    item_id: str,
    now: datetime,
    *,
    policy: ReviewPolicy | None = None,
) -> None:
    """Release ``reviewer``'s claim; the item is offered to them again only as a last resort."""
    repo = ReviewRepository(session)
    row = _held(repo, reviewer, item_id, now)
    repo.release(row)
    repo.record_skip(item_id, reviewer, now)
    session.flush()


def undo_last(
    session: Session, reviewer: str, now: datetime, *, policy: ReviewPolicy | None = None
) -> ClaimedItem:
    """Void ``reviewer``'s last label within the window; the item is theirs to label again."""
    p = policy_of(session, policy)
    repo = ReviewRepository(session)
    label = repo.last_label(reviewer)
    if label is None:
        raise NothingToUndo("no label to undo")
    if now - label.decided_at > p.undo_window:
        raise NothingToUndo(
            f"the last label is older than the undo window ({int(p.undo_window.total_seconds())} s)"
        )
    row = repo.lock_item(label.item_id)
    if row is None:  # pragma: no cover - labels reference their item
        raise NothingToUndo("the labeled item is gone")
    if (
        row.claimed_by not in (None, reviewer)
        and row.lease_expires_at is not None
        and row.lease_expires_at > now
    ):
        raise NothingToUndo("another reviewer holds the item now")
    label.undone_at = now
    repo.cancel_unsent(label.label_id, now)
    repo.release_held(reviewer, now, keep=row.item_id)
    row.state = "pending"
    row.claimed_by = reviewer
    row.claimed_at = now
    row.lease_expires_at = now + p.lease
    session.flush()
    return _claimed(row, repo.queue_depth())


def progress(session: Session, reviewer: str, now: datetime | None = None) -> Progress:
    """Labels ``reviewer`` made since midnight UTC of ``now`` (default: the current time)."""
    moment = now if now is not None else datetime.now(UTC)
    midnight = datetime.combine(moment.astimezone(UTC).date(), time(), tzinfo=UTC)
    repo = ReviewRepository(session)
    return Progress(
        labeled_today=repo.labels_since(reviewer, midnight), queue_depth=repo.queue_depth()
    )


def review_stats(session: Session, now: datetime) -> ReviewStats:
    """Queue depth and age, labels per reviewer, and agreement on doubly-labeled items."""
    repo = ReviewRepository(session)
    oldest = repo.oldest_pending()
    doubly, matching = repo.agreement()
    return ReviewStats(
        queue_depth=repo.queue_depth(),
        oldest_pending_age_seconds=(
            max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
        ),
        labels_per_reviewer=repo.labels_per_reviewer(),
        doubly_labeled_items=doubly,
        agreement=(matching / doubly) if doubly else None,
    )


def _held(repo: ReviewRepository, reviewer: str, item_id: str, now: datetime) -> ReviewItemRow:
    row = repo.lock_item(item_id)
    if (
        row is None
        or row.state != "pending"
        or row.claimed_by != reviewer
        or row.lease_expires_at is None
        or row.lease_expires_at <= now
    ):
        raise NotHolder(f"you do not hold a claim on item {item_id}")
    return row


def _claimed(row: ReviewItemRow, queue_depth: int) -> ClaimedItem:
    assert row.lease_expires_at is not None
    return ClaimedItem(
        item_id=row.item_id,
        title=row.title,
        description=row.description,
        url=row.url,
        probabilities=dict(row.probabilities),
        predicted_tag=row.predicted_tag,
        confidence=row.confidence,
        model_version=row.model_version,
        audit=row.audit,
        reason=cast(ReviewReason, row.reason),
        suggested_tag=row.suggested_tag,
        report_comment=row.report_comment,
        report_count=row.report_count,
        lease_expires_at=row.lease_expires_at,
        queue_depth=queue_depth,
    )
