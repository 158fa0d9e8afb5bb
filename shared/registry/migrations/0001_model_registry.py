"""Model registry: versions, their artifacts and the status audit trail.

Revision ID: registry_0001
Revises:
Create Date: 2026-11-22
Replaces: 0001 of the single chain before each owner kept its own
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STABLE_ONLY = sa.text("status = 'stable'")


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_hash", sa.String(length=128), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=False),
        sa.Column("parent_version", sa.String(length=64), nullable=True),
        sa.Column("model_card", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('candidate', 'canary', 'stable', 'rolled_back', 'retired')",
            name=op.f("ck_model_versions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_version"],
            ["model_versions.version"],
            name=op.f("fk_model_versions_parent_version_model_versions"),
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_versions")),
    )
    op.create_index(op.f("ix_model_versions_name"), "model_versions", ["name"])
    op.create_index(
        "uq_model_versions_one_stable",
        "model_versions",
        ["name"],
        unique=True,
        postgresql_where=STABLE_ONLY,
        sqlite_where=STABLE_ONLY,
    )
    op.create_table(
        "model_artifacts",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"],
            ["model_versions.version"],
            name=op.f("fk_model_artifacts_version_model_versions"),
        ),
        sa.PrimaryKeyConstraint("version", "name", name=op.f("pk_model_artifacts")),
    )
    op.create_table(
        "model_status_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"],
            ["model_versions.version"],
            name=op.f("fk_model_status_changes_version_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_status_changes")),
    )
    op.create_index(op.f("ix_model_status_changes_version"), "model_status_changes", ["version"])


def downgrade() -> None:
    op.drop_index(op.f("ix_model_status_changes_version"), table_name="model_status_changes")
    op.drop_table("model_status_changes")
    op.drop_table("model_artifacts")
    op.drop_index("uq_model_versions_one_stable", table_name="model_versions")
    op.drop_index(op.f("ix_model_versions_name"), table_name="model_versions")
    op.drop_table("model_versions")
