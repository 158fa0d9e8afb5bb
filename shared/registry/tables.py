"""Registry tables. Only repository.py queries them; everything else sees shared.registry.models."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db.base import Base, UtcDateTime
from shared.db.owners import SchemaOwner

# These tables' migrations: their own chain beside them, their own version table.
SCHEMA = SchemaOwner(
    "registry",
    Path(__file__).resolve().parent / "migrations",
    replaces={"0001": "registry_0001", "0005": "registry_0002"},
)

# Kept in step with shared.registry.models.ModelStatus; a CHECK rather than a database enum
# type because adding a value to a PostgreSQL enum cannot run inside a transaction.
STATUS_VALUES = ("candidate", "canary", "stable", "rolled_back", "retired", "rejected")
_STATUS_CHECK = "status IN ({})".format(", ".join(f"'{s}'" for s in STATUS_VALUES))


class ModelVersionRow(Base):
    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    data_hash: Mapped[str] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    thresholds: Mapped[dict[str, float]] = mapped_column(JSON)
    classes: Mapped[list[str]] = mapped_column(JSON)
    parent_version: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("model_versions.version")
    )
    model_card: Mapped[str] = mapped_column(Text)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    artifacts: Mapped[list[ModelArtifactRow]] = relationship(
        back_populates="model_version", order_by="ModelArtifactRow.name"
    )

    __table_args__ = (
        CheckConstraint(_STATUS_CHECK, name="status"),
        # The database's own guarantee of at most one stable version per model name; the
        # service also checks inside its transaction to raise a clear error first.
        Index(
            "uq_model_versions_one_stable",
            "name",
            unique=True,
            postgresql_where=text("status = 'stable'"),
            sqlite_where=text("status = 'stable'"),
        ),
    )


class ModelArtifactRow(Base):
    __tablename__ = "model_artifacts"

    # The composite primary key is the unique (version, name) pair.
    version: Mapped[str] = mapped_column(
        String(64), ForeignKey("model_versions.version"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)

    model_version: Mapped[ModelVersionRow] = relationship(back_populates="artifacts")


class ModelStatusChangeRow(Base):
    __tablename__ = "model_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(
        String(64), ForeignKey("model_versions.version"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reason: Mapped[str] = mapped_column(Text)


class ModelTrafficRow(Base):
    """How a model's traffic is split right now: at most one canary, its share, shadow mode.

    One row per model name, written by the rollout controller through the registry and
    read by every classifier instance; no row means all traffic goes to the stable version.
    """

    __tablename__ = "model_traffic"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    canary_version: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("model_versions.version")
    )
    canary_weight: Mapped[float] = mapped_column(Float)
    shadow: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("canary_weight >= 0 AND canary_weight <= 1", name="canary_weight"),
    )
