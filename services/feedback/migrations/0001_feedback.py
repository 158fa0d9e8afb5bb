"""Feedback store: labels (append-only), reconciled gold, predictions, item texts,
conflicts and retraining runs.

Revision ID: feedback_0001
Revises:
Create Date: 2026-11-24
Replaces: 0004 of the single chain before each owner kept its own
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "feedback_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_labels",
        sa.Column("label_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("labeler", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("predicted_tag", sa.String(length=200), nullable=True),
        sa.Column("audit", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("labeled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('reviewer', 'user_report')", name=op.f("ck_feedback_labels_source")
        ),
        sa.PrimaryKeyConstraint("label_id", name=op.f("pk_feedback_labels")),
    )
    op.create_index(
        op.f("ix_feedback_labels_item_id"), "feedback_labels", ["item_id"], unique=False
    )
    op.create_table(
        "feedback_gold",
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n_labels", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('agreed', 'conflict')", name=op.f("ck_feedback_gold_status")
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_feedback_gold")),
    )
    op.create_table(
        "feedback_predictions",
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("predicted_tag", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "item_id", "model_version", "role", name=op.f("pk_feedback_predictions")
        ),
    )
    op.create_table(
        "feedback_items",
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_feedback_items")),
    )
    op.create_index(
        op.f("ix_feedback_items_received_at"), "feedback_items", ["received_at"], unique=False
    )
    op.create_table(
        "feedback_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_conflicts")),
    )
    op.create_index(
        "ix_feedback_conflicts_item_id", "feedback_conflicts", ["item_id"], unique=False
    )
    op.create_table(
        "retrain_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("label_count", sa.Integer(), nullable=False),
        sa.Column("gold_hash", sa.String(length=64), nullable=True),
        sa.Column("drift_score", sa.Float(), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("version_status", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_runs")),
    )


def downgrade() -> None:
    op.drop_table("retrain_runs")
    op.drop_index("ix_feedback_conflicts_item_id", table_name="feedback_conflicts")
    op.drop_table("feedback_conflicts")
    op.drop_index(op.f("ix_feedback_items_received_at"), table_name="feedback_items")
    op.drop_table("feedback_items")
    op.drop_table("feedback_predictions")
    op.drop_table("feedback_gold")
    op.drop_index(op.f("ix_feedback_labels_item_id"), table_name="feedback_labels")
    op.drop_table("feedback_labels")
