"""Review service: the queue, per-reviewer skips, labels, their outbox and accounts.

Revision ID: review_0001
Revises:
Create Date: 2026-11-24
Replaces: 0003 of the single chain before each owner kept its own
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "review_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_accounts",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('reviewer', 'admin')", name=op.f("ck_review_accounts_role")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_review_accounts")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_review_accounts_token_hash")),
    )
    op.create_table(
        "review_items",
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("predicted_tag", sa.String(length=200), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("audit", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'labeled')", name=op.f("ck_review_items_state")),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_review_items")),
    )
    op.create_index("ix_review_items_queue", "review_items", ["state", "confidence", "received_at"])
    op.create_index(op.f("ix_review_items_claimed_by"), "review_items", ["claimed_by"])
    op.create_table(
        "review_skips",
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["review_items.item_id"],
            name=op.f("fk_review_skips_item_id_review_items"),
        ),
        sa.PrimaryKeyConstraint("item_id", "reviewer", name=op.f("pk_review_skips")),
    )
    op.create_table(
        "review_labels",
        sa.Column("label_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("predicted_tag", sa.String(length=200), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("audit", sa.Boolean(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision_seconds", sa.Float(), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["review_items.item_id"],
            name=op.f("fk_review_labels_item_id_review_items"),
        ),
        sa.PrimaryKeyConstraint("label_id", name=op.f("pk_review_labels")),
    )
    op.create_index(op.f("ix_review_labels_item_id"), "review_labels", ["item_id"])
    op.create_index(
        "ix_review_labels_reviewer_decided", "review_labels", ["reviewer", "decided_at"]
    )
    op.create_table(
        "review_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("label_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["review_labels.label_id"],
            name=op.f("fk_review_outbox_label_id_review_labels"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_outbox")),
    )
    op.create_index(op.f("ix_review_outbox_label_id"), "review_outbox", ["label_id"])
    op.create_index("ix_review_outbox_unsent", "review_outbox", ["sent_at", "cancelled_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_review_outbox_unsent", table_name="review_outbox")
    op.drop_index(op.f("ix_review_outbox_label_id"), table_name="review_outbox")
    op.drop_table("review_outbox")
    op.drop_index("ix_review_labels_reviewer_decided", table_name="review_labels")
    op.drop_index(op.f("ix_review_labels_item_id"), table_name="review_labels")
    op.drop_table("review_labels")
    op.drop_table("review_skips")
    op.drop_index(op.f("ix_review_items_claimed_by"), table_name="review_items")
    op.drop_index("ix_review_items_queue", table_name="review_items")
    op.drop_table("review_items")
    op.drop_table("review_accounts")
