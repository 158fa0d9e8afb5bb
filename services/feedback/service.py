"""The feedback logic without HTTP, Kafka or SQL: reconciling labels and building reports.

Reconciliation rules (``reconcile``), applied to every label ever received for an item:

1. Per labeler, only the latest label counts (``labeled_at``, then ``label_id``).
2. Any reviewer label beats every user report: user reports decide only items no
   reviewer has labeled.
3. Reviewers who agree give the gold tag. When they disagree, the tag with strictly the
   most votes wins (a second opinion breaks a tie); a tie is a *conflict*: no gold tag,
   and the item goes back to review.
4. User reports alone: the tag with the most reports; a tie goes to the latest report.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

# Re-exported: a label the broker did not acknowledge is answered 503 by api.py.
from shared.kafka.producer import BrokerUnavailable as BrokerUnavailable
from shared.kafka.producer import Publisher
from shared.messages import FeedbackLabel

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


def reconcile(labels: Sequence[LabelView]) -> Reconciled:
    """The gold label of one item from all its labels (see the module docstring)."""
    if not labels:
        raise ValueError("reconcile needs at least one label")
    item_id = labels[0].item_id
    latest = _latest_per_labeler(labels)
    reviewers = [label for label in latest if label.source == "reviewer"]
    if reviewers:
        votes = Counter(label.tag for label in reviewers)
        ranked = votes.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            tied = tuple(sorted(tag for tag, n in ranked if n == ranked[0][1]))
            return Reconciled(item_id, None, "reviewer", "conflict", len(labels), tied)
        return Reconciled(item_id, ranked[0][0], "reviewer", "agreed", len(labels))
    votes = Counter(label.tag for label in latest)
    most = max(votes.values())
    newest = max(
        (label for label in latest if votes[label.tag] == most),
        key=lambda label: (label.labeled_at, label.label_id),
    )
    return Reconciled(item_id, newest.tag, "user_report", "agreed", len(labels))


# -- user reports ------------------------------------------------------------------------


class ReportRejected(Exception):
    """A report that names a bad field; answered 422."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class RateLimited(Exception):
    """The client sent too many reports; answered 429 with ``Retry-After``."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many reports; retry after {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class TokenBuckets:
    """One token bucket per client: ``burst`` reports at once, ``per_minute`` sustained.

    Clients are configured API keys, so the number of buckets is bounded.
    """

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> None:
        """Spend one token of ``client``'s bucket, or raise ``RateLimited``."""
        now = self._clock()
        tokens, at = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            raise RateLimited(max(1, math.ceil((1.0 - tokens) / self._rate)))
        self._buckets[client] = (tokens - 1.0, now)


class PredictionLookup(Protocol):
    async def latest_prediction(self, item_id: str) -> tuple[str, str | None] | None:
        """(model_version, predicted_tag) the stable model last gave ``item_id``, if known."""
        ...


@dataclass(frozen=True, slots=True)
class Report:
    item_id: str
    suggested_tag: str
    comment: str | None = None


class ReportService:
    """Turn an end user's report into a ``user_report`` label on feedback.labels."""

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
        self._buckets.take(client)
        known = await self._predictions.latest_prediction(report.item_id)
        label = FeedbackLabel(
            label_id=uuid.uuid4().hex,
            item_id=report.item_id,
            tag=report.suggested_tag,
            source="user_report",
            labeler=client,
            model_version=known[0] if known else None,
            predicted_tag=known[1] if known else None,
            comment=report.comment,
            labeled_at=self._clock(),
        )
        await self._publisher.send(self._topic, report.item_id.encode(), label.encode())
        return label
