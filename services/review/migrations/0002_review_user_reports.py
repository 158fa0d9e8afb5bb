"""Review queue: what end users reported about an item (user_report requests).

Revision ID: review_0002
Revises: review_0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "review_0002"
down_revision: str | None = "review_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("review_items", sa.Column("suggested_tag", sa.String(length=200), nullable=True))
    op.add_column("review_items", sa.Column("report_comment", sa.Text(), nullable=True))
    op.add_column("review_items", sa.Column("report_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("report_count")
        batch.drop_column("report_comment")
        batch.drop_column("suggested_tag")
