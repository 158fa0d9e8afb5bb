"""Feedback store: user reports go to review, and are never gold by themselves.

Adds the reports waiting to be passed on to review.requests, and removes the gold rows
that user reports alone had made (no reviewer ever looked at those items).

Revision ID: feedback_0002
Revises: feedback_0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "feedback_0002"
down_revision: str | None = "feedback_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_report_requests",
        sa.Column("label_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("label_id", name=op.f("pk_feedback_report_requests")),
    )
    op.create_index(
        op.f("ix_feedback_report_requests_item_id"),
        "feedback_report_requests",
        ["item_id"],
        unique=False,
    )
    op.execute("DELETE FROM feedback_gold WHERE source = 'user_report'")


def downgrade() -> None:
    # The deleted gold rows are not restored: they were never reviewed.
    op.drop_index(
        op.f("ix_feedback_report_requests_item_id"), table_name="feedback_report_requests"
    )
    op.drop_table("feedback_report_requests")
