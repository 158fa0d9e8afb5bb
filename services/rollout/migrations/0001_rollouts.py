"""Rollouts and their analyses (the canary controller's record of every decision).

Revision ID: rollout_0001
Revises:
Create Date: 2026-11-30
Replaces: 0006 of the single chain before each owner kept its own
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "rollout_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("stable_version", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("paused_from", sa.String(length=20), nullable=True),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("inconclusives", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('shadow', 'canary', 'paused', 'promoted', 'rolled_back')",
            name=op.f("ck_rollouts_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    op.create_index(op.f("ix_rollouts_model_name"), "rollouts", ["model_name"])
    op.create_table(
        "rollout_analyses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("analysed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["rollouts.id"],
            name=op.f("fk_rollout_analyses_rollout_id_rollouts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_analyses")),
    )
    op.create_index(op.f("ix_rollout_analyses_rollout_id"), "rollout_analyses", ["rollout_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rollout_analyses_rollout_id"), table_name="rollout_analyses")
    op.drop_table("rollout_analyses")
    op.drop_index(op.f("ix_rollouts_model_name"), table_name="rollouts")
    op.drop_table("rollouts")
