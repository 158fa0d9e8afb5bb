"""Ingest dedup store: one row per item id with the keys it is known by.

Revision ID: ingest_0001
Revises:
Create Date: 2026-11-23
Replaces: 0002 of the single chain before each owner kept its own
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ingest_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_items",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("url_key", sa.String(length=64), nullable=True),
        sa.Column("external_key", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("produced_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'produced')", name=op.f("ck_ingest_items_state")),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_ingest_items")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_ingest_items_content_hash")),
        sa.UniqueConstraint("external_key", name=op.f("uq_ingest_items_external_key")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ingest_items_idempotency_key")),
        sa.UniqueConstraint("url_key", name=op.f("uq_ingest_items_url_key")),
    )


def downgrade() -> None:
    op.drop_table("ingest_items")
