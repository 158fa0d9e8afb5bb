"""SQL of the rollout controller: rollouts and the analyses that decided them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select, text

from services.rollout.tables import ACTIVE_STATES, RolloutAnalysisRow, RolloutRow
from shared.db.session import make_session_factory

State = Literal["shadow", "canary", "paused", "promoted", "rolled_back"]


class Analysis(BaseModel):
    """One analysis: the step it judged, every check, the verdict and what followed."""

    model_config = ConfigDict(frozen=True)

    step_index: int
    step: str
    verdict: str = Field(description="pass, fail, inconclusive or hold.")
    action: str = Field(description="What the controller did about it.")
    checks: list[dict[str, Any]] = Field(
        description="Each check: its queries, values, threshold, verdict and detail."
    )
    analysed_at: datetime


class Rollout(BaseModel):
    """A candidate's way through the steps, as it stands."""

    model_config = ConfigDict(frozen=True)

    id: int
    model_name: str
    version: str
    stable_version: str
    state: State
    paused_from: State | None = None
    step_index: int
    step: str
    weight: float
    failures: int
    inconclusives: int
    reason: str
    started_at: datetime
    step_started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    analyses: list[Analysis] = Field(default_factory=list, description="Newest first.")

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


_MUTABLE = (
    "state",
    "paused_from",
    "step_index",
    "weight",
    "failures",
    "inconclusives",
    "reason",
    "step_started_at",
    "updated_at",
    "finished_at",
)


class RolloutStore:
    """Rollouts of one model name; every method runs its own short transaction."""

    def __init__(self, engine: Engine, model_name: str, step_labels: tuple[str, ...]) -> None:
        self._engine = engine
        self._name = model_name
        self._labels = step_labels
        self._reads = make_session_factory(engine)
        self._writes = make_session_factory(engine, immediate=True)

    def ping(self) -> None:
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def create(
        self,
        *,
        version: str,
        stable_version: str,
        state: State,
        weight: float,
        reason: str,
        now: datetime,
    ) -> Rollout:
        with self._writes.begin() as session:
            row = RolloutRow(
                model_name=self._name,
                version=version,
                stable_version=stable_version,
                state=state,
                paused_from=None,
                step_index=0,
                weight=weight,
                failures=0,
                inconclusives=0,
                reason=reason,
                started_at=now,
                step_started_at=now,
                updated_at=now,
                finished_at=None,
            )
            session.add(row)
            session.flush()
            return self._to_model(row, [])

    def active(self) -> Rollout | None:
        with self._reads() as session:
            row = session.scalar(
                select(RolloutRow)
                .where(RolloutRow.model_name == self._name, RolloutRow.state.in_(ACTIVE_STATES))
                .order_by(RolloutRow.id.desc())
            )
            return self._to_model(row, []) if row is not None else None

    def has_rollout(self, version: str) -> bool:
        """Whether ``version`` ever had a rollout, finished or not."""
        with self._reads() as session:
            found = session.scalar(
                select(RolloutRow.id)
                .where(RolloutRow.model_name == self._name, RolloutRow.version == version)
                .limit(1)
            )
            return found is not None

    def save(self, rollout: Rollout, analysis: Analysis | None = None) -> Rollout:
        """Write the rollout's mutable fields, and the analysis that changed them, at once."""
        with self._writes.begin() as session:
            row = session.get(RolloutRow, rollout.id)
            if row is None:
                raise LookupError(f"rollout {rollout.id} does not exist")
            for name in _MUTABLE:
                setattr(row, name, getattr(rollout, name))
            if analysis is not None:
                session.add(RolloutAnalysisRow(rollout_id=rollout.id, **analysis.model_dump()))
        return rollout

    def newest(self, limit: int = 20, analyses: int = 50) -> list[Rollout]:
        """The latest rollouts, newest first, each with its latest analyses."""
        with self._reads() as session:
            rows = list(
                session.scalars(
                    select(RolloutRow)
                    .where(RolloutRow.model_name == self._name)
                    .order_by(RolloutRow.id.desc())
                    .limit(limit)
                )
            )
            result = []
            for row in rows:
                found = session.scalars(
                    select(RolloutAnalysisRow)
                    .where(RolloutAnalysisRow.rollout_id == row.id)
                    .order_by(RolloutAnalysisRow.id.desc())
                    .limit(analyses)
                )
                result.append(self._to_model(row, list(found)))
            return result

    def _to_model(self, row: RolloutRow, analyses: list[RolloutAnalysisRow]) -> Rollout:
        labels = self._labels
        step = labels[row.step_index] if row.step_index < len(labels) else "done"
        return Rollout(
            id=row.id,
            model_name=row.model_name,
            version=row.version,
            stable_version=row.stable_version,
            state=row.state,
            paused_from=row.paused_from,
            step_index=row.step_index,
            step=step,
            weight=row.weight,
            failures=row.failures,
            inconclusives=row.inconclusives,
            reason=row.reason,
            started_at=row.started_at,
            step_started_at=row.step_started_at,
            updated_at=row.updated_at,
            finished_at=row.finished_at,
            analyses=[
                Analysis(
                    step_index=a.step_index,
                    step=a.step,
                    verdict=a.verdict,
                    action=a.action,
                    checks=a.checks,
                    analysed_at=a.analysed_at,
                )
                for a in analyses
            ],
        )
