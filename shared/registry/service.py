"""The model registry: register versions, hand out verified artifacts, move versions through
their rollout statuses with an audit trail."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from shared.db.owners import UPGRADE_HINT, SchemaNotUpgraded
from shared.db.session import make_engine, make_session_factory
from shared.registry.errors import (
    ArtifactNotFound,
    InvalidRegistration,
    InvalidTransition,
    VersionNotFound,
)
from shared.registry.models import (
    CASCADE_ARTIFACT,
    MODEL_ARTIFACT,
    ArtifactRef,
    ModelStatus,
    ModelVersion,
    StatusChange,
    TrafficSplit,
)
from shared.registry.repository import RegistryRepository
from shared.registry.storage import ArtifactStore, is_safe_segment, sha256_hex
from shared.registry.tables import SCHEMA as REGISTRY_SCHEMA
from shared.settings import Settings

S = ModelStatus
ALLOWED_TRANSITIONS: Mapping[ModelStatus, frozenset[ModelStatus]] = {
    S.CANDIDATE: frozenset({S.CANARY, S.ROLLED_BACK, S.RETIRED, S.STABLE, S.REJECTED}),
    S.CANARY: frozenset({S.STABLE, S.ROLLED_BACK, S.CANDIDATE}),
    S.STABLE: frozenset({S.RETIRED}),
    S.ROLLED_BACK: frozenset({S.CANDIDATE}),
    S.RETIRED: frozenset({S.CANDIDATE}),
    # Back to candidate only by an operator's explicit rollout, overriding the gate.
    S.REJECTED: frozenset({S.CANDIDATE}),
}


def version_id(model_bytes: bytes, cascade: bytes | None = None) -> str:
    """The version id of a model: derived from its ONNX bytes, so the same model, same id.

    A cascade's id also covers its manifest (``cascade.json``), which names its second
    stage's encoder and head by their SHA-256: same two stages, same id; a stage-1 model
    alone keeps the id it always had.
    """
    if cascade is None:
        return "v" + sha256_hex(model_bytes)[:12]
    return "v" + sha256_hex(sha256_hex(model_bytes).encode() + b"\n" + cascade)[:12]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ModelRegistry:
    """Versions of one model: metadata in the database, artifact files under a folder.

    Build it with :meth:`open`; every method runs its own short transaction, so one
    instance may be shared by threads.
    """

    def __init__(
        self,
        engine: Engine,
        registry_dir: Path,
        model_name: str,
        *,
        clock: Callable[[], datetime] = _utc_now,
        owns_engine: bool = False,
    ) -> None:
        """Use an already migrated database; ``owns_engine`` makes close() dispose it."""
        self.model_name = model_name
        self._engine = engine
        self._owns_engine = owns_engine
        self._clock = clock
        self._store = ArtifactStore(registry_dir, model_name)
        self._store.create()
        self._reads = make_session_factory(engine)
        self._writes = make_session_factory(engine, immediate=True)

    @classmethod
    def open(cls, settings: Settings) -> ModelRegistry:
        """Open the registry in the database of ``settings``, which must be migrated.

        Raises :class:`SchemaNotUpgraded` (saying to run ``tagstream db upgrade``) when
        the registry's tables are not at the revision this code expects: migrating is the
        init job's, not every process's, and a missing table would fail later and obscurely.
        """
        from shared.db.migrate import at_head  # Alembic: only when opening, not on import

        engine = make_engine(settings.database_url)
        try:
            if not at_head(engine, REGISTRY_SCHEMA):
                raise SchemaNotUpgraded(
                    f"the model registry's tables are not migrated: {UPGRADE_HINT}"
                )
            return cls(engine, settings.registry_dir, settings.model_name, owns_engine=True)
        except BaseException:
            engine.dispose()
            raise

    def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- registering -------------------------------------------------------------------

    def register(
        self,
        *,
        artifacts: Mapping[str, bytes],
        data_hash: str,
        params: dict[str, Any],
        metrics: dict[str, Any],
        thresholds: dict[str, float],
        classes: list[str],
        model_card: str,
        parent_version: str | None = None,
        gate: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Store a new version, or return the existing one if this model.onnx is known.

        The first version of a model becomes stable, later ones candidates. Without an
        explicit ``parent_version`` the lineage points at the current stable version.
        ``gate`` is the offline gate's verdict and figures (``shared.ml.gate``).
        """
        if MODEL_ARTIFACT not in artifacts:
            raise InvalidRegistration(f"artifacts must include {MODEL_ARTIFACT!r}")
        bad_names = sorted(name for name in artifacts if not is_safe_segment(name))
        if bad_names:
            raise InvalidRegistration(f"artifact names must be plain file names: {bad_names}")
        for label, value in (("params", params), ("metrics", metrics), ("gate", gate)):
            try:
                # Strict JSON: PostgreSQL rejects NaN and infinity, SQLite would keep them.
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as error:
                raise InvalidRegistration(f"{label} must be plain JSON data: {error}") from error
        refs = {
            name: ArtifactRef(name=name, sha256=sha256_hex(data), size_bytes=len(data))
            for name, data in artifacts.items()
        }
        try:
            draft = ModelVersion(
                version=version_id(artifacts[MODEL_ARTIFACT], artifacts.get(CASCADE_ARTIFACT)),
                name=self.model_name,
                status=ModelStatus.CANDIDATE,
                created_at=self._clock(),
                data_hash=data_hash,
                params=params,
                metrics=metrics,
                thresholds=thresholds,
                classes=classes,
                parent_version=parent_version,
                model_card=model_card,
                artifacts=refs,
                gate=gate,
            )
        except ValidationError as error:
            raise InvalidRegistration(str(error)) from error

        existing = self._find(draft.version)
        if existing is not None:
            return existing
        try:
            return self._insert(draft, artifacts)
        except IntegrityError:
            # A concurrent register of the same model, or of the first (stable) version,
            # won the race on PostgreSQL; run again to see its result.
            return self._insert(draft, artifacts)

    def _insert(self, draft: ModelVersion, artifacts: Mapping[str, bytes]) -> ModelVersion:
        with self._writes.begin() as session:
            repo = RegistryRepository(session, self.model_name)
            statuses = repo.lock_statuses()
            existing = self._existing(repo, draft.version)
            if existing is not None:
                return existing
            stable = next((v for v, s in statuses.items() if s is ModelStatus.STABLE), None)
            parent = draft.parent_version if draft.parent_version is not None else stable
            if parent is not None and parent not in statuses:
                raise InvalidRegistration(
                    f"parent version {parent!r} is not a version of {self.model_name!r}"
                )
            status = ModelStatus.CANDIDATE if statuses else ModelStatus.STABLE
            model = draft.model_copy(
                update={"status": status, "parent_version": parent, "created_at": self._clock()}
            )
            repo.insert(model)
            repo.record_change(model.version, None, status, model.created_at, "registered")
            # Files are written only by the transaction that inserted the row, after the
            # insert succeeded, so racing registrations cannot mix their files.
            for name, data in artifacts.items():
                self._store.write(model.version, name, data)
            return model

    def _find(self, version: str) -> ModelVersion | None:
        with self._reads() as session:
            return self._existing(RegistryRepository(session, self.model_name), version)

    def _existing(self, repo: RegistryRepository, version: str) -> ModelVersion | None:
        owner = repo.owner_of(version)
        if owner is not None and owner != self.model_name:
            raise InvalidRegistration(
                f"these model bytes are already registered as {version} of model {owner!r}"
            )
        return repo.get(version)

    # -- reading -----------------------------------------------------------------------

    def get(self, version: str) -> ModelVersion:
        with self._reads() as session:
            model = RegistryRepository(session, self.model_name).get(version)
        if model is None:
            raise VersionNotFound(f"model {self.model_name!r} has no version {version!r}")
        return model

    def list_versions(self) -> list[ModelVersion]:
        """Every version of the model, newest first."""
        with self._reads() as session:
            return RegistryRepository(session, self.model_name).list_newest_first()

    def stable(self) -> ModelVersion | None:
        with self._reads() as session:
            return RegistryRepository(session, self.model_name).stable()

    def history(self, version: str) -> list[StatusChange]:
        """The version's status changes, oldest first, starting with its registration."""
        self.get(version)
        with self._reads() as session:
            return RegistryRepository(session, self.model_name).history(version)

    def version_dir(self, version: str) -> Path:
        return self._store.version_dir(self.get(version).version)

    def artifact_path(self, version: str, name: str) -> Path:
        """Path of an artifact whose bytes were just checked against the recorded SHA-256."""
        return self._store.verified_path(version, self._artifact(version, name))

    def artifact_bytes(self, version: str, name: str) -> bytes:
        """An artifact's bytes, checked against the recorded SHA-256."""
        return self._store.verified_bytes(version, self._artifact(version, name))

    def _artifact(self, version: str, name: str) -> ArtifactRef:
        ref = self.get(version).artifacts.get(name)
        if ref is None:
            raise ArtifactNotFound(f"version {version!r} has no artifact {name!r}")
        return ref

    # -- status ------------------------------------------------------------------------

    def promote(self, version: str, reason: str = "manual") -> ModelVersion:
        """Make ``version`` stable and retire the previous stable one, in one transaction."""
        return self.set_status(version, ModelStatus.STABLE, reason)

    def set_status(self, version: str, status: ModelStatus | str, reason: str) -> ModelVersion:
        """Move ``version`` to ``status`` if the transition is allowed, recording it.

        Setting the status a version already has is a no-op. Making a version stable
        retires the current stable one in the same transaction. A canary that leaves the
        canary status (promoted, rolled back, returned to candidate) stops getting traffic.
        """
        try:
            target = ModelStatus(status)
        except ValueError:
            raise InvalidTransition(f"unknown status {status!r}") from None
        with self._writes.begin() as session:
            repo = RegistryRepository(session, self.model_name)
            statuses = repo.lock_statuses()
            self._move(repo, statuses, version, target, reason)
            model = repo.get(version)
        if model is None:  # the row is locked; only a broken database gets here
            raise VersionNotFound(f"model {self.model_name!r} has no version {version!r}")
        return model

    def _move(
        self,
        repo: RegistryRepository,
        statuses: Mapping[str, ModelStatus],
        version: str,
        target: ModelStatus,
        reason: str,
    ) -> None:
        current = statuses.get(version)
        if current is None:
            raise VersionNotFound(f"model {self.model_name!r} has no version {version!r}")
        if current is target:
            return
        self._check_transition(version, current, target)
        now = self._clock()
        if target is ModelStatus.STABLE:
            # Retire first: the one-stable index must hold after every statement.
            self._retire_stable(repo, statuses, replaced_by=version, now=now)
        repo.update_status(version, target)
        repo.record_change(version, current, target, now, reason)
        if current is ModelStatus.CANARY:
            repo.set_traffic(None, 0.0, False, now)

    # -- traffic -----------------------------------------------------------------------

    def traffic(self) -> TrafficSplit:
        """The stable version, the canary (if any), its share of items and shadow mode."""
        with self._reads() as session:
            return RegistryRepository(session, self.model_name).traffic()

    def set_canary(self, version: str, *, weight: float, shadow: bool, reason: str) -> TrafficSplit:
        """Make ``version`` the canary (if it is not yet) with this share of traffic.

        One canary at a time: another version in canary status is refused. ``shadow``
        means the canary scores every item but the stable version decides them all.
        """
        if not 0.0 <= weight <= 1.0:
            raise InvalidTransition(f"canary weight must be within [0, 1], not {weight}")
        with self._writes.begin() as session:
            repo = RegistryRepository(session, self.model_name)
            statuses = repo.lock_statuses()
            if statuses.get(version) is ModelStatus.STABLE:
                raise InvalidTransition(f"{version} is the stable version, not a candidate")
            others = [v for v, s in statuses.items() if s is ModelStatus.CANARY and v != version]
            if others:
                raise InvalidTransition(f"{others[0]} is already the canary of this model")
            self._move(repo, statuses, version, ModelStatus.CANARY, reason)
            repo.set_traffic(version, weight, shadow, self._clock())
            return repo.traffic()

    @staticmethod
    def _retire_stable(
        repo: RegistryRepository,
        statuses: Mapping[str, ModelStatus],
        *,
        replaced_by: str,
        now: datetime,
    ) -> None:
        for other, status in statuses.items():
            if status is ModelStatus.STABLE:
                repo.update_status(other, ModelStatus.RETIRED)
                repo.record_change(
                    other, status, ModelStatus.RETIRED, now, f"replaced by {replaced_by}"
                )

    @staticmethod
    def _check_transition(version: str, current: ModelStatus, target: ModelStatus) -> None:
        allowed = ALLOWED_TRANSITIONS[current]
        if target not in allowed:
            options = ", ".join(sorted(allowed))
            raise InvalidTransition(
                f"{version} is {current}; it can become {options}, not {target}"
            )
