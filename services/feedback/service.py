"""The feedback logic without HTTP, Kafka or SQL: reconciling labels and building reports.

Reconciliation rules (``reconcile``), applied to every label ever received for an item:

1. Per labeler, only the latest label counts (``labeled_at``, then ``label_id``).
2. Only reviewers' labels make gold. User reports never do: a report sends the item to
   the review queue (``report_request``), and the reviewer's label decides.
3. Reviewers who agree give the gold tag. When they disagree, the tag with strictly the
   most votes wins (a second opinion breaks a tie); a tie is a *conflict*: no gold tag,
   and the item goes back to review.
4. User reports alone: no gold (``reconcile`` returns None). Their votes — one per end
   user, the latest report of each — give the tag suggested to the reviewer
   (``suggestion``): the most reported, a tie going to the latest report.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

# Re-exported: a label the broker did not acknowledge is answered 503 by api.py.
from shared.kafka.producer import Publisher
from shared.messages import FeedbackLabel
from shared.ratelimit import TokenBuckets

Source = Literal["reviewer", "user_report"]
Status = Literal["agreed", "conflict"]


@dataclass(frozen=True, slots=True)
class LabelView:
    """The fields of a stored label that reconciliation looks at."""

    label_id: str
    item_id: str
    tag: str
    source: Source
    labeler: str
    labeled_at: datetime


@dataclass(frozen=True, slots=True)
class Reconciled:
    item_id: str
    tag: str | None
    source: Source
    status: Status
    n_labels: int
    conflicting_tags: tuple[str, ...] = ()


def _latest_per_labeler(labels: Sequence[LabelView]) -> list[LabelView]:
    latest: dict[tuple[str, str], LabelView] = {}
    for label in labels:
        key = (label.source, label.labeler)
        current = latest.get(key)
        if current is None or (label.labeled_at, label.label_id) > (
            current.labeled_at,
            current.label_id,
        ):
            latest[key] = label
    return list(latest.values())


def reconcile(labels: Sequence[LabelView]) -> Reconciled | None:
    """The gold label of one item from all its labels; None while no reviewer labeled it."""
    if not labels:
        raise ValueError("reconcile needs at least one label")
    item_id = labels[0].item_id
    latest = _latest_per_labeler(labels)
    reviewers = [label for label in latest if label.source == "reviewer"]
    if not reviewers:
        return None  # user reports alone are a request for review, never gold
    votes = Counter(label.tag for label in reviewers)
    ranked = votes.most_common()
    n_reviewer_labels = sum(1 for label in labels if label.source == "reviewer")
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        tied = tuple(sorted(tag for tag, n in ranked if n == ranked[0][1]))
        return Reconciled(item_id, None, "reviewer", "conflict", n_reviewer_labels, tied)
    return Reconciled(item_id, ranked[0][0], "reviewer", "agreed", n_reviewer_labels)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What end users say of an item: the suggested tag and how many of them reported."""

    tag: str
    end_users: int


def suggestion(labels: Sequence[LabelView]) -> Suggestion | None:
    """The end users' suggestion from an item's labels (rule 4); None without reports."""
    latest = [label for label in _latest_per_labeler(labels) if label.source == "user_report"]
    if not latest:
        return None
    votes = Counter(label.tag for label in latest)
    most = max(votes.values())
    newest = max(
        (label for label in latest if votes[label.tag] == most),
        key=lambda label: (label.labeled_at, label.label_id),
    )
    return Suggestion(newest.tag, len(latest))


# -- user reports ------------------------------------------------------------------------


class ReportRejected(Exception):
    """A report that names a bad field; answered 422."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def reporter_id(client: str, end_user_id: str) -> str:
    """The labeler of an end user's reports: their app's key id and a digest of their id.

    One per end user, so the rate limit and the vote count are per end user; the app's
    own user id is not stored (the digest is enough to tell end users apart).
    """
    digest = hashlib.sha256(f"{client}\0{end_user_id}".encode()).hexdigest()[:24]
    return f"{client}/{digest}"


class PredictionLookup(Protocol):
    async def latest_prediction(self, item_id: str) -> tuple[str, str | None] | None:
        """(model_version, predicted_tag) the stable model last gave ``item_id``, if known."""
        ...


@dataclass(frozen=True, slots=True)
class Report:
    item_id: str
    suggested_tag: str
    end_user_id: str
    comment: str | None = None


class ReportService:
    """Turn an end user's report into a ``user_report`` label on feedback.labels.

    The label is a vote, never gold: the consumer stores it and asks for review
    (review.requests, reason ``user_report``); a reviewer's label decides.
    """

    def __init__(
        self,
        *,
        publisher: Publisher,
        predictions: PredictionLookup,
        topic: str,
        approved_tags: Sequence[str],
        buckets: TokenBuckets,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._publisher = publisher
        self._predictions = predictions
        self._topic = topic
        self._approved = tuple(approved_tags)
        self._buckets = buckets
        self._clock = clock

    async def submit(self, report: Report, *, client: str) -> FeedbackLabel:
        """Validate, rate-limit and produce; returns the label once the broker has it."""
        if report.suggested_tag not in self._approved:
            raise ReportRejected(
                "suggested_tag",
                f"{report.suggested_tag!r} is not an approved tag "
                f"(one of: {', '.join(self._approved)})",
            )
        reporter = reporter_id(client, report.end_user_id)
        self._buckets.take(reporter)
        known = await self._predictions.latest_prediction(report.item_id)
        label = FeedbackLabel(
            label_id=uuid.uuid4().hex,
            item_id=report.item_id,
            tag=report.suggested_tag,
            source="user_report",
            labeler=reporter,
            model_version=known[0] if known else None,
            predicted_tag=known[1] if known else None,
            comment=report.comment,
            labeled_at=self._clock(),
        )
        await self._publisher.send(self._topic, report.item_id.encode(), label.encode())
        return label
