"""The dedup store's table. Only repository.py queries it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, UtcDateTime
from shared.db.owners import SchemaOwner

# These tables' migrations: their own chain beside them, their own version table.
SCHEMA = SchemaOwner(
    "ingest",
    Path(__file__).resolve().parent / "migrations",
    replaces={"0002": "ingest_0001"},
)


class IngestItemRow(Base):
    """One item ingest assigned an id to; every key is a sha256 hex digest.

    ``pending`` rows were never acknowledged by the broker (or not known to be): a retry
    of the same item re-produces it under the same id.
    """

    __tablename__ = "ingest_items"

    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    url_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    external_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    produced_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (CheckConstraint("state IN ('pending', 'produced')", name="state"),)
