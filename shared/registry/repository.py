"""SQL of the model registry. Takes a session from the caller, who owns the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, selectinload

from shared.registry.models import (
    ArtifactRef,
    ModelStatus,
    ModelVersion,
    StatusChange,
    TrafficSplit,
)
from shared.registry.tables import (
    ModelArtifactRow,
    ModelStatusChangeRow,
    ModelTrafficRow,
    ModelVersionRow,
)


class RegistryRepository:
    """Reads and writes model versions of one model name within the caller's transaction."""

    def __init__(self, session: Session, model_name: str) -> None:
        self._session = session
        self._name = model_name

    def get(self, version: str) -> ModelVersion | None:
        row = self._session.scalar(self._select().where(ModelVersionRow.version == version))
        return _to_model(row) if row is not None else None

    def owner_of(self, version: str) -> str | None:
        """The model name ``version`` is registered under, whatever it is, or None."""
        return self._session.scalar(
            select(ModelVersionRow.name).where(ModelVersionRow.version == version)
        )

    def list_newest_first(self) -> list[ModelVersion]:
        rows = self._session.scalars(
            self._select().order_by(
                ModelVersionRow.created_at.desc(), ModelVersionRow.version.desc()
            )
        )
        return [_to_model(row) for row in rows]

    def stable(self) -> ModelVersion | None:
        row = self._session.scalar(
            self._select().where(ModelVersionRow.status == ModelStatus.STABLE.value)
        )
        return _to_model(row) if row is not None else None

    def lock_statuses(self) -> dict[str, ModelStatus]:
        """Lock every version of the model until the transaction ends; return their statuses.

        On PostgreSQL this is SELECT ... FOR UPDATE (in a fixed order, so two lockers cannot
        deadlock): a concurrent status change waits here and then sees the committed
        result. SQLite renders no FOR UPDATE; there the write transaction itself is
        exclusive (BEGIN IMMEDIATE, see shared.db.session.make_session_factory).
        """
        rows = self._session.execute(
            select(ModelVersionRow.version, ModelVersionRow.status)
            .where(ModelVersionRow.name == self._name)
            .order_by(ModelVersionRow.version)
            .with_for_update()
        )
        return {version: ModelStatus(status) for version, status in rows}

    def insert(self, model: ModelVersion) -> None:
        """Insert ``model`` and its artifact rows; flushed now so conflicts surface here."""
        row = ModelVersionRow(
            version=model.version,
            name=model.name,
            status=model.status.value,
            created_at=model.created_at,
            data_hash=model.data_hash,
            params=model.params,
            metrics=model.metrics,
            thresholds=model.thresholds,
            classes=model.classes,
            parent_version=model.parent_version,
            model_card=model.model_card,
            gate=model.gate,
        )
        row.artifacts = [
            ModelArtifactRow(name=ref.name, sha256=ref.sha256, size_bytes=ref.size_bytes)
            for ref in model.artifacts.values()
        ]
        self._session.add(row)
        self._session.flush()

    def update_status(self, version: str, status: ModelStatus) -> None:
        """Set the status now (not at flush), so the caller controls statement order."""
        self._session.execute(
            update(ModelVersionRow)
            .where(ModelVersionRow.version == version)
            .values(status=status.value)
        )

    def record_change(
        self,
        version: str,
        from_status: ModelStatus | None,
        to_status: ModelStatus,
        changed_at: datetime,
        reason: str,
    ) -> None:
        self._session.add(
            ModelStatusChangeRow(
                version=version,
                from_status=from_status.value if from_status is not None else None,
                to_status=to_status.value,
                changed_at=changed_at,
                reason=reason,
            )
        )
        self._session.flush()

    def history(self, version: str) -> list[StatusChange]:
        rows = self._session.scalars(
            select(ModelStatusChangeRow)
            .where(ModelStatusChangeRow.version == version)
            .order_by(ModelStatusChangeRow.id)
        )
        return [_to_change(row) for row in rows]

    def traffic(self) -> TrafficSplit:
        stable = self._session.scalar(
            select(ModelVersionRow.version).where(
                ModelVersionRow.name == self._name,
                ModelVersionRow.status == ModelStatus.STABLE.value,
            )
        )
        row = self._session.get(ModelTrafficRow, self._name)
        if row is None or row.canary_version is None:
            return TrafficSplit(stable=stable, updated_at=row.updated_at if row else None)
        return TrafficSplit(
            stable=stable,
            canary=row.canary_version,
            canary_weight=row.canary_weight,
            shadow=row.shadow,
            updated_at=row.updated_at,
        )

    def set_traffic(
        self, canary: str | None, weight: float, shadow: bool, updated_at: datetime
    ) -> None:
        row = self._session.get(ModelTrafficRow, self._name)
        if row is None:
            row = ModelTrafficRow(name=self._name)
            self._session.add(row)
        row.canary_version = canary
        row.canary_weight = weight if canary is not None else 0.0
        row.shadow = shadow and canary is not None
        row.updated_at = updated_at
        self._session.flush()

    def _select(self) -> Select[ModelVersionRow]:
        return (
            select(ModelVersionRow)
            .where(ModelVersionRow.name == self._name)
            .options(selectinload(ModelVersionRow.artifacts))
        )


def _to_model(row: ModelVersionRow) -> ModelVersion:
    return ModelVersion(
        version=row.version,
        name=row.name,
        status=ModelStatus(row.status),
        created_at=row.created_at,
        data_hash=row.data_hash,
        params=row.params,
        metrics=row.metrics,
        thresholds=row.thresholds,
        classes=row.classes,
        parent_version=row.parent_version,
        model_card=row.model_card,
        gate=row.gate,
        artifacts={
            a.name: ArtifactRef(name=a.name, sha256=a.sha256, size_bytes=a.size_bytes)
            for a in row.artifacts
        },
    )


def _to_change(row: ModelStatusChangeRow) -> StatusChange:
    return StatusChange(
        id=row.id,
        version=row.version,
        from_status=ModelStatus(row.from_status) if row.from_status is not None else None,
        to_status=ModelStatus(row.to_status),
        changed_at=row.changed_at,
        reason=row.reason,
    )
