"""The review service's tables. Only repository.py, accounts.py and auth.py query them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, UtcDateTime
from shared.db.owners import SchemaOwner

# These tables' migrations: their own chain beside them, their own version table.
SCHEMA = SchemaOwner(
    "review",
    Path(__file__).resolve().parent / "migrations",
    replaces={"0003": "review_0001"},
)


class ReviewAccountRow(Base):
    """A reviewer or admin: API token as a sha256 hex digest, optional password hash.

    ``disabled_at`` set: neither its token nor its password lets it in. ``token_issued_at``
    dates the token for the expiry setting; ``token_revoked_at`` voids it until rotated.
    """

    __tablename__ = "review_accounts"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    token_issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    token_revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (CheckConstraint("role IN ('reviewer', 'admin')", name="role"),)


class ReviewItemRow(Base):
    """One item waiting for (``pending``) or having received (``labeled``) a human label.

    A claim is ``claimed_by`` + ``lease_expires_at``; an expired lease is no claim.
    ``traceparent`` is the item's trace where its request was queued: its label is sent
    under it.
    """

    __tablename__ = "review_items"

    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text())
    description: Mapped[str] = mapped_column(Text())
    url: Mapped[str | None] = mapped_column(Text())
    reason: Mapped[str] = mapped_column(String(32))
    predicted_tag: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float())
    probabilities: Mapped[dict[str, Any]] = mapped_column(JSON())
    model_version: Mapped[str] = mapped_column(String(64))
    audit: Mapped[bool] = mapped_column(Boolean())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    enqueued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16))
    claimed_by: Mapped[str | None] = mapped_column(String(100), index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # What end users reported (reason ``user_report``); the latest report's figures.
    suggested_tag: Mapped[str | None] = mapped_column(String(200))
    report_comment: Mapped[str | None] = mapped_column(Text())
    report_count: Mapped[int | None] = mapped_column(Integer())
    traceparent: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        CheckConstraint("state IN ('pending', 'labeled')", name="state"),
        Index("ix_review_items_queue", "state", "confidence", "received_at"),
    )


class ReviewSkipRow(Base):
    """A reviewer passed on an item; it is offered to them again only when nothing else is."""

    __tablename__ = "review_skips"

    item_id: Mapped[str] = mapped_column(ForeignKey("review_items.item_id"), primary_key=True)
    reviewer: Mapped[str] = mapped_column(String(100), primary_key=True)
    skipped_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ReviewLabelRow(Base):
    """One decision: who, when, what, against the model's guess. ``undone_at`` voids it."""

    __tablename__ = "review_labels"

    label_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("review_items.item_id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    tag: Mapped[str] = mapped_column(String(200))
    predicted_tag: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(64))
    audit: Mapped[bool] = mapped_column(Boolean())
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decision_seconds: Mapped[float] = mapped_column(Float())
    undone_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_review_labels_reviewer_decided", "reviewer", "decided_at"),)


class ReviewOutboxRow(Base):
    """A message of a label to produce (its FeedbackLabel, its human decision), written in
    the label's transaction; relayed, then sent, under the item's ``traceparent``."""

    __tablename__ = "review_outbox"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    label_id: Mapped[str] = mapped_column(ForeignKey("review_labels.label_id"), index=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    traceparent: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (Index("ix_review_outbox_unsent", "sent_at", "cancelled_at", "id"),)
