"""SQL of the review queue, labels and outbox, within the caller's transaction.

Claims: two reviewers never hold the same item. PostgreSQL locks the chosen row with
``SELECT ... FOR UPDATE SKIP LOCKED`` (concurrent claimers skip it and take the next);
SQLite has no row locks, so the claim is one conditional ``UPDATE`` whose ``WHERE``
re-checks that the item is still claimable, inside a ``BEGIN IMMEDIATE`` transaction
(``shared.db.session.writer``) and verified by its row count.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from services.review.tables import (
    ReviewItemRow,
    ReviewLabelRow,
    ReviewOutboxRow,
    ReviewSkipRow,
)

Priority = Literal["confidence", "oldest"]


class ReviewRepository:
    """Reads and writes the review tables within ``session``'s transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session
        bind = session.get_bind()
        self._postgres = bind.dialect.name == "postgresql"

    # -- queue -----------------------------------------------------------------------

    def insert_item(self, values: dict[str, Any]) -> bool:
        """Store a review request unless its item id is known; True when inserted."""
        insert = pg_insert if self._postgres else sqlite_insert
        statement = (
            insert(ReviewItemRow)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(ReviewItemRow.item_id)
        )
        # RETURNING, not rowcount: psycopg's rowcount does not tell a skipped conflict apart.
        return self._session.execute(statement).first() is not None

    def reopen(
        self,
        item_id: str,
        requested_at: datetime,
        reason: str,
        report: dict[str, Any] | None = None,
        traceparent: str | None = None,
    ) -> bool:
        """Put a labeled item back in the queue for a request newer than the one it had.

        ``report`` (the ``suggested_tag``, ``report_comment`` and ``report_count`` of a
        user_report request) is stored with it, and the newer request's ``traceparent``.
        """
        result = self._session.execute(
            update(ReviewItemRow)
            .where(
                ReviewItemRow.item_id == item_id,
                ReviewItemRow.state == "labeled",
                ReviewItemRow.requested_at < requested_at,
            )
            .values(
                state="pending",
                reason=reason,
                requested_at=requested_at,
                claimed_by=None,
                claimed_at=None,
                lease_expires_at=None,
                traceparent=traceparent,
                **(report or {}),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def merge_report(self, item_id: str, requested_at: datetime, report: dict[str, Any]) -> bool:
        """A newer user report of a waiting item: it becomes a user_report item (claim order).

        The claim, if any, stands: the reviewer holding it sees the report on the next page.
        """
        result = self._session.execute(
            update(ReviewItemRow)
            .where(
                ReviewItemRow.item_id == item_id,
                ReviewItemRow.state == "pending",
                or_(
                    ReviewItemRow.reason != "user_report",
                    ReviewItemRow.requested_at < requested_at,
                ),
            )
            .values(reason="user_report", requested_at=requested_at, **report)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def held_by(self, reviewer: str, now: datetime) -> ReviewItemRow | None:
        """The item ``reviewer`` holds under an unexpired lease."""
        return self._session.scalars(
            select(ReviewItemRow)
            .where(
                ReviewItemRow.state == "pending",
                ReviewItemRow.claimed_by == reviewer,
                ReviewItemRow.lease_expires_at > now,
            )
            .order_by(ReviewItemRow.claimed_at.desc())
            .limit(1)
        ).first()

    def claim_next(
        self, reviewer: str, now: datetime, lease: timedelta, priority: Priority
    ) -> ReviewItemRow | None:
        """Claim the first claimable item for ``reviewer``; None when there is none."""
        # An alias, so the subquery inside SQLite's UPDATE is not correlated to its target.
        item = aliased(ReviewItemRow, name="candidate")
        candidate = (
            select(item.item_id)
            .where(_claimable(item, now), ~_labeled_by(item, reviewer))
            .order_by(*_order(item, reviewer, priority))
            .limit(1)
        )
        values = {"claimed_by": reviewer, "claimed_at": now, "lease_expires_at": now + lease}
        if self._postgres:
            item_id = self._session.scalars(candidate.with_for_update(skip_locked=True)).first()
            if item_id is None:
                return None
            self._session.execute(
                update(ReviewItemRow).where(ReviewItemRow.item_id == item_id).values(**values)
            )
        else:
            result = self._session.execute(
                update(ReviewItemRow)
                .where(
                    ReviewItemRow.item_id == candidate.scalar_subquery(),
                    _claimable(ReviewItemRow, now),
                )
                .values(**values)
                .returning(ReviewItemRow.item_id)
                .execution_options(synchronize_session=False)
            )
            claimed = result.scalars().all()
            if len(claimed) != 1:
                return None
            item_id = claimed[0]
        row = self._session.get(ReviewItemRow, item_id, populate_existing=True)
        return row

    def lock_item(self, item_id: str) -> ReviewItemRow | None:
        """The item, locked for update on PostgreSQL (SQLite: BEGIN IMMEDIATE holds the lock)."""
        statement = select(ReviewItemRow).where(ReviewItemRow.item_id == item_id)
        if self._postgres:
            statement = statement.with_for_update()
        return self._session.scalars(statement.execution_options(populate_existing=True)).first()

    def release(self, row: ReviewItemRow) -> None:
        row.claimed_by = None
        row.claimed_at = None
        row.lease_expires_at = None

    def release_held(self, reviewer: str, now: datetime, keep: str | None = None) -> None:
        """Release every unexpired claim of ``reviewer`` except on ``keep``."""
        conditions = [
            ReviewItemRow.claimed_by == reviewer,
            ReviewItemRow.lease_expires_at > now,
        ]
        if keep is not None:
            conditions.append(ReviewItemRow.item_id != keep)
        self._session.execute(
            update(ReviewItemRow)
            .where(*conditions)
            .values(claimed_by=None, claimed_at=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )

    def record_skip(self, item_id: str, reviewer: str, now: datetime) -> None:
        skip = self._session.get(ReviewSkipRow, (item_id, reviewer))
        if skip is None:
            self._session.add(ReviewSkipRow(item_id=item_id, reviewer=reviewer, skipped_at=now))
        else:
            skip.skipped_at = now

    def queue_depth(self) -> int:
        return (
            self._session.scalar(
                select(func.count())
                .select_from(ReviewItemRow)
                .where(ReviewItemRow.state == "pending")
            )
            or 0
        )

    def oldest_pending(self) -> datetime | None:
        return self._session.scalar(
            select(func.min(ReviewItemRow.received_at)).where(ReviewItemRow.state == "pending")
        )

    # -- labels ----------------------------------------------------------------------

    def add_label(self, label: ReviewLabelRow, *outbox: ReviewOutboxRow) -> None:
        """The label and its outbox rows, in this order (the relay sends by row id)."""
        self._session.add(label)
        self._session.flush()  # the outbox rows reference the label
        for row in outbox:
            self._session.add(row)
            self._session.flush()  # one by one: ids follow the given order

    def active_labels(self, item_id: str) -> int:
        return (
            self._session.scalar(
                select(func.count(func.distinct(ReviewLabelRow.reviewer))).where(
                    ReviewLabelRow.item_id == item_id, ReviewLabelRow.undone_at.is_(None)
                )
            )
            or 0
        )

    def last_label(self, reviewer: str) -> ReviewLabelRow | None:
        """``reviewer``'s most recent label still in force."""
        return self._session.scalars(
            select(ReviewLabelRow)
            .where(ReviewLabelRow.reviewer == reviewer, ReviewLabelRow.undone_at.is_(None))
            .order_by(ReviewLabelRow.decided_at.desc(), ReviewLabelRow.label_id.desc())
            .limit(1)
        ).first()

    def cancel_unsent(self, label_id: str, now: datetime) -> int:
        """Cancel the label's outbox rows not yet relayed; how many were cancelled."""
        result = self._session.execute(
            update(ReviewOutboxRow)
            .where(
                ReviewOutboxRow.label_id == label_id,
                ReviewOutboxRow.sent_at.is_(None),
                ReviewOutboxRow.cancelled_at.is_(None),
            )
            .values(cancelled_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0))

    def labels_since(self, reviewer: str, since: datetime) -> int:
        return (
            self._session.scalar(
                select(func.count()).where(
                    ReviewLabelRow.reviewer == reviewer,
                    ReviewLabelRow.decided_at >= since,
                    ReviewLabelRow.undone_at.is_(None),
                )
            )
            or 0
        )

    def labels_per_reviewer(self) -> dict[str, int]:
        rows = self._session.execute(
            select(ReviewLabelRow.reviewer, func.count())
            .where(ReviewLabelRow.undone_at.is_(None))
            .group_by(ReviewLabelRow.reviewer)
        )
        return {reviewer: int(count) for reviewer, count in rows}

    def agreement(self) -> tuple[int, int]:
        """(items labeled by two or more reviewers, those whose labels all match)."""
        in_force = ReviewLabelRow.undone_at.is_(None)
        rows = self._session.execute(
            select(
                func.count(func.distinct(ReviewLabelRow.reviewer)),
                func.count(func.distinct(ReviewLabelRow.tag)),
            )
            .where(in_force)
            .group_by(ReviewLabelRow.item_id)
            .having(func.count(func.distinct(ReviewLabelRow.reviewer)) >= 2)
        ).all()
        return len(rows), sum(1 for _, tags in rows if tags == 1)

    # -- outbox ----------------------------------------------------------------------

    def unsent(self, limit: int) -> Sequence[ReviewOutboxRow]:
        """Oldest unsent outbox rows, locked (PostgreSQL) so that one relay sends each."""
        statement = (
            select(ReviewOutboxRow)
            .where(ReviewOutboxRow.sent_at.is_(None), ReviewOutboxRow.cancelled_at.is_(None))
            .order_by(ReviewOutboxRow.id)
            .limit(limit)
        )
        if self._postgres:
            statement = statement.with_for_update(skip_locked=True)
        return self._session.scalars(statement).all()

    def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        self._session.execute(
            update(ReviewOutboxRow)
            .where(ReviewOutboxRow.id.in_(list(ids)))
            .values(sent_at=now)
            .execution_options(synchronize_session=False)
        )


def _claimable(item: Any, now: datetime) -> ColumnElement[bool]:
    return and_(
        item.state == "pending",
        or_(item.claimed_by.is_(None), item.lease_expires_at <= now),
    )


def _labeled_by(item: Any, reviewer: str) -> ColumnElement[bool]:
    """``reviewer`` already labeled the item, for the request it is queued for.

    A second opinion on a conflict is asked of the other reviewers. A user report asks
    anyone, the earlier reviewer included, to look again in the light of the report: only
    a label made after the report was requested counts as having looked.
    """
    return exists().where(
        ReviewLabelRow.item_id == item.item_id,
        ReviewLabelRow.reviewer == reviewer,
        ReviewLabelRow.undone_at.is_(None),
        or_(item.reason != "user_report", ReviewLabelRow.decided_at >= item.requested_at),
    )


def _order(item: Any, reviewer: str, priority: Priority) -> list[Any]:
    skipped = exists().where(
        ReviewSkipRow.item_id == item.item_id, ReviewSkipRow.reviewer == reviewer
    )
    # Items this reviewer skipped come last: offered again only when nothing else is.
    # End users' reports come first: someone downstream is looking at a wrong tag now.
    order: list[Any] = [
        case((skipped, 1), else_=0),
        case((item.reason == "user_report", 0), else_=1),
    ]
    if priority == "confidence":
        order.append(item.confidence)
    order += [item.received_at, item.item_id]
    return order
