"""Review accounts: disabled accounts, and API tokens that expire or are revoked.

Revision ID: review_0003
Revises: review_0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "review_0003"
down_revision: str | None = "review_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for column in ("disabled_at", "token_issued_at", "token_revoked_at"):
        op.add_column(
            "review_accounts", sa.Column(column, sa.DateTime(timezone=True), nullable=True)
        )
    # Tokens issued before this revision date from their account's creation, so a
    # configured expiry applies to them too.
    op.execute("UPDATE review_accounts SET token_issued_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("review_accounts") as batch:
        batch.drop_column("token_revoked_at")
        batch.drop_column("token_issued_at")
        batch.drop_column("disabled_at")
