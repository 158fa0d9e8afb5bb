"""The offline gate: a version's gate verdict and figures, and the ``rejected`` status.

Revision ID: registry_0003
Revises: registry_0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0003"
down_revision: str | None = "registry_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("candidate", "canary", "stable", "rolled_back", "retired")
AFTER = (*BEFORE, "rejected")


def _status_check(values: Sequence[str]) -> str:
    return "status IN ({})".format(", ".join(f"'{v}'" for v in values))


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table (it cannot alter a CHECK); PostgreSQL alters.
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("gate", sa.JSON(), nullable=True))
        batch.drop_constraint(op.f("ck_model_versions_status"), type_="check")
        batch.create_check_constraint(op.f("ck_model_versions_status"), _status_check(AFTER))


def downgrade() -> None:
    # A rejected version has no older status to return to: it becomes a candidate again.
    op.execute("UPDATE model_versions SET status = 'candidate' WHERE status = 'rejected'")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_constraint(op.f("ck_model_versions_status"), type_="check")
        batch.create_check_constraint(op.f("ck_model_versions_status"), _status_check(BEFORE))
        batch.drop_column("gate")
