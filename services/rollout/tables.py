"""Rollout tables. Only repository.py queries them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, UtcDateTime
from shared.db.owners import SchemaOwner

# These tables' migrations: their own chain beside them, their own version table.
SCHEMA = SchemaOwner(
    "rollout",
    Path(__file__).resolve().parent / "migrations",
    replaces={"0006": "rollout_0001"},
)

STATES = ("shadow", "canary", "paused", "promoted", "rolled_back")
ACTIVE_STATES = ("shadow", "canary", "paused")


class RolloutRow(Base):
    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str] = mapped_column(String(64))
    stable_version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    paused_from: Mapped[str | None] = mapped_column(String(20))
    step_index: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)
    failures: Mapped[int] = mapped_column(Integer)
    inconclusives: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    step_started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("state IN ({})".format(", ".join(f"'{s}'" for s in STATES)), name="state"),
    )


class RolloutAnalysisRow(Base):
    __tablename__ = "rollout_analyses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), index=True)
    step_index: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(20))
    verdict: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(Text)
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    analysed_at: Mapped[datetime] = mapped_column(UtcDateTime())
