"""Model traffic: the canary version, its share of items and shadow mode, per model.

Revision ID: registry_0002
Revises: registry_0001
Create Date: 2026-11-30
Replaces: 0005 of the single chain before each owner kept its own
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0002"
down_revision: str | None = "registry_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_traffic",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("canary_version", sa.String(length=64), nullable=True),
        sa.Column("canary_weight", sa.Float(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "canary_weight >= 0 AND canary_weight <= 1",
            name=op.f("ck_model_traffic_canary_weight"),
        ),
        sa.ForeignKeyConstraint(
            ["canary_version"],
            ["model_versions.version"],
            name=op.f("fk_model_traffic_canary_version_model_versions"),
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_model_traffic")),
    )


def downgrade() -> None:
    op.drop_table("model_traffic")
