"""The feedback store's tables. Only repository.py and, read-only, gold.py query them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, UtcDateTime
from shared.db.owners import SchemaOwner

# These tables' migrations: their own chain beside them, their own version table.
SCHEMA = SchemaOwner(
    "feedback",
    Path(__file__).resolve().parent / "migrations",
    replaces={"0004": "feedback_0001"},
)


class FeedbackLabelRow(Base):
    """Every label received, append-only; a redelivered label (same id) is ignored."""

    __tablename__ = "feedback_labels"

    label_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), index=True)
    tag: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    labeler: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(64))
    predicted_tag: Mapped[str | None] = mapped_column(String(200))
    audit: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    labeled_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (CheckConstraint("source IN ('reviewer', 'user_report')", name="source"),)


class GoldLabelRow(Base):
    """The reconciled label of an item (``tag`` is None while reviewers disagree)."""

    __tablename__ = "feedback_gold"

    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tag: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    n_labels: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (CheckConstraint("status IN ('agreed', 'conflict')", name="status"),)


class PredictionRow(Base):
    """What a model version (in a role) decided for an item, from content.classified."""

    __tablename__ = "feedback_predictions"

    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    predicted_tag: Mapped[str] = mapped_column(String(200))
    route: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[dict[str, float]] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime())


class FeedbackItemRow(Base):
    """An item's text from content.raw (for retraining and drift); bounded by pruning."""

    __tablename__ = "feedback_items"

    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ConflictRow(Base):
    """Reviewers disagreed on an item; ``requeued_at`` once it was sent back to review."""

    __tablename__ = "feedback_conflicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(64))
    tags: Mapped[str] = mapped_column(Text)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime())
    requeued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_feedback_conflicts_item_id", "item_id"),)


class RetrainRunRow(Base):
    """One retraining run: why it ran, on how many gold labels, and what it registered."""

    __tablename__ = "retrain_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    result: Mapped[str] = mapped_column(String(16))
    label_count: Mapped[int] = mapped_column(Integer)
    gold_hash: Mapped[str | None] = mapped_column(String(64))
    drift_score: Mapped[float | None] = mapped_column(Float)
    version: Mapped[str | None] = mapped_column(String(64))
    version_status: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class ReportRequestRow(Base):
    """An end user's report (a user_report label) to pass on to review.requests.

    ``sent_at`` once the broker acknowledged the review request; pending while the item's
    text or a prediction for it is not known yet (sent when they arrive).
    """

    __tablename__ = "feedback_report_requests"

    label_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), index=True)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
