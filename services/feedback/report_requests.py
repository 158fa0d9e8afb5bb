"""End users' reports on their way to review.requests: SQL within the store's batch.

A new ``user_report`` label asks for review unless it changes nothing a reviewer would
look at: the same end user repeating the tag they already reported (no new vote), or a
tag reviewers already agreed on (the gold tag is what the user asks for). Asked-for
reports wait here until the item's text and a prediction are known, then become one
``ReviewRequest`` (schema_version 2, reason ``user_report``) per item carrying the
end users' suggestion, the latest comment and the number of end users. The request's
``requested_at`` is the newest report's time, so a re-sent request is recognised by the
review queue as the same one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from services.feedback.service import LabelView, suggestion
from services.feedback.tables import (
    FeedbackItemRow,
    FeedbackLabelRow,
    GoldLabelRow,
    PredictionRow,
    ReportRequestRow,
)
from shared.messages import FeedbackLabel, ReviewRequest

LatestPrediction = Callable[[Session, str], PredictionRow | None]


def record_reports(session: Session, reports: Iterable[FeedbackLabel]) -> int:
    """Queue the new reports that ask for review; how many were queued."""
    queued = 0
    for report in reports:
        repeated = session.scalar(
            select(FeedbackLabelRow.label_id)
            .where(
                FeedbackLabelRow.item_id == report.item_id,
                FeedbackLabelRow.source == "user_report",
                FeedbackLabelRow.labeler == report.labeler,
                # earlier, or at the same time with a smaller id (one of two is first)
                or_(
                    FeedbackLabelRow.labeled_at < report.labeled_at,
                    and_(
                        FeedbackLabelRow.labeled_at == report.labeled_at,
                        FeedbackLabelRow.label_id < report.label_id,
                    ),
                ),
            )
            .order_by(FeedbackLabelRow.labeled_at.desc(), FeedbackLabelRow.label_id.desc())
            .limit(1)
        )
        if repeated is not None:
            previous = session.get(FeedbackLabelRow, repeated)
            if previous is not None and previous.tag == report.tag:
                continue  # no new vote
        gold = session.get(GoldLabelRow, report.item_id)
        if gold is not None and gold.status == "agreed" and gold.tag == report.tag:
            continue  # reviewers already gave the tag the user asks for
        if session.get(ReportRequestRow, report.label_id) is None:
            session.add(
                ReportRequestRow(
                    label_id=report.label_id,
                    item_id=report.item_id,
                    reported_at=report.labeled_at,
                )
            )
            queued += 1
    session.flush()
    return queued


def mark_sent(session: Session, label_ids: Collection[str], now: datetime) -> None:
    """The review requests of these reports were acknowledged by the broker."""
    if label_ids:
        session.execute(
            update(ReportRequestRow)
            .where(ReportRequestRow.label_id.in_(list(label_ids)))
            .values(sent_at=now)
        )


def pending_requests(
    session: Session,
    item_ids: Collection[str],
    approved: Collection[str],
    latest: LatestPrediction,
) -> list[tuple[tuple[str, ...], ReviewRequest]]:
    """(report label ids, review request) for the touched items that can be sent now."""
    if not item_ids:
        return []
    pending: dict[str, list[ReportRequestRow]] = {}
    for row in session.scalars(
        select(ReportRequestRow).where(
            ReportRequestRow.item_id.in_(list(item_ids)), ReportRequestRow.sent_at.is_(None)
        )
    ):
        pending.setdefault(row.item_id, []).append(row)
    requests: list[tuple[tuple[str, ...], ReviewRequest]] = []
    for item_id in sorted(pending):
        item = session.get(FeedbackItemRow, item_id)
        prediction = latest(session, item_id)
        if item is None or prediction is None:
            continue  # kept pending: sent once both are known
        rows = pending[item_id]
        labels = list(
            session.scalars(
                select(FeedbackLabelRow).where(
                    FeedbackLabelRow.item_id == item_id, FeedbackLabelRow.source == "user_report"
                )
            )
        )
        votes = suggestion(
            [
                LabelView(
                    r.label_id, r.item_id, r.tag, cast(Any, r.source), r.labeler, r.labeled_at
                )
                for r in labels
            ]
        )
        commented = [r for r in labels if r.comment]
        comment = (
            max(commented, key=lambda r: (r.labeled_at, r.label_id)).comment if commented else None
        )
        predicted = prediction.predicted_tag
        request = ReviewRequest(
            schema_version=2,
            item_id=item_id,
            title=item.title,
            description=item.description,
            url=item.url,
            reason="user_report",
            predicted_tag=predicted if predicted in approved else None,
            confidence=min(1.0, max(0.0, prediction.confidence)),
            probabilities=prediction.probabilities,
            model_version=prediction.model_version,
            received_at=item.received_at,
            requested_at=max(r.reported_at for r in rows),
            suggested_tag=votes.tag if votes else None,
            comment=comment,
            report_count=votes.end_users if votes else None,
        )
        requests.append((tuple(sorted(r.label_id for r in rows)), request))
    return requests
