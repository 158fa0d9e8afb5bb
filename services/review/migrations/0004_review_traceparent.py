"""Review items and outbox rows keep the item's W3C traceparent, so a label joins its trace.

Revision ID: review_0004
Revises: review_0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "review_0004"
down_revision: str | None = "review_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and without a default: items queued before this revision have no trace.
    for table in ("review_items", "review_outbox"):
        op.add_column(table, sa.Column("traceparent", sa.String(length=128), nullable=True))


def downgrade() -> None:
    for table in ("review_outbox", "review_items"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("traceparent")
