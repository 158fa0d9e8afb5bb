"""The rollout controller: moves one candidate at a time through the steps.

Each step runs for the analysis interval; then the canary is compared with the stable
version on Prometheus metrics (``analysis.analyse``). A pass moves to the next step (the
last one promotes); a fail counts toward the failure limit, an inconclusive analysis
(no data, NaN, failed query, no canary traffic) toward its own limit, and past either
limit the canary is rolled back. Missing data is never a pass. Every analysis is stored
with its queries, values, thresholds and verdicts, and every change is published on
``models.events`` after the registry (the truth the classifiers read) was changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, assert_never

import structlog

from services.rollout.analysis import CheckResult, analyse, overall_verdict
from services.rollout.decision import Action, decide
from services.rollout.metrics import RolloutMetrics
from services.rollout.prometheus import PrometheusClient, PromQuery
from services.rollout.repository import Analysis, Rollout, RolloutStore, State
from services.rollout.settings import RolloutSettings
from shared.kafka.events import publish_event
from shared.messages import ModelEvent
from shared.messages.models import ModelEventKind
from shared.registry import ModelRegistry, ModelStatus, RegistryError, VersionNotFound
from shared.stopping import sleep_or_stop

log = structlog.get_logger("services.rollout")
T = TypeVar("T")
NO_PROMETHEUS = (
    "no Prometheus configured (TAGSTREAM_PROMETHEUS_URL): the controller does not "
    "advance a rollout without metrics"
)


Analyser = Callable[..., Awaitable[list[CheckResult]]]
"""``analysis.analyse``'s signature; tests script verdicts through it."""


class RolloutError(Exception):
    """A request the controller refuses; ``status_code`` is the HTTP answer."""

    status_code = 409

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(RolloutError):
    status_code = 404


class EventPublisher(Protocol):
    async def publish(self, event: ModelEvent) -> None: ...


class KafkaEvents:
    """Publishes on models.events (``shared.kafka.events``): logged, never raised."""

    def __init__(self, settings: RolloutSettings) -> None:
        self._settings = settings

    async def publish(self, event: ModelEvent) -> None:
        await publish_event(self._settings, event)


def utc_now() -> datetime:
    return datetime.now(UTC)


class RolloutController:
    """The state machine; one instance per model (the service runs exactly one replica)."""

    def __init__(
        self,
        settings: RolloutSettings,
        store: RolloutStore,
        registry: ModelRegistry,
        events: EventPublisher,
        prometheus: PromQuery | None,
        metrics: RolloutMetrics,
        *,
        clock: Callable[[], datetime] = utc_now,
        analyser: Analyser = analyse,
    ) -> None:
        self.settings = settings
        self._analyser = analyser
        self.steps = settings.steps
        self._store = store
        self._registry = registry
        self._events = events
        self._prometheus = prometheus
        self._metrics = metrics
        self._clock = clock
        self._lock = asyncio.Lock()

    @property
    def prometheus_configured(self) -> bool:
        return self._prometheus is not None

    async def _blocking(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(function, *args, **kwargs)

    # -- commands ----------------------------------------------------------------------

    async def start(self, version: str, reason: str = "started by an operator") -> Rollout:
        async with self._lock:
            active = await self._blocking(self._store.active)
            if active is not None:
                raise RolloutError(
                    f"the rollout of {active.version} is {active.state}: abort it first"
                )
            try:
                model = await self._blocking(self._registry.get, version)
            except VersionNotFound as exc:
                raise NotFound(str(exc)) from None
            stable = (await self._blocking(self._registry.traffic)).stable
            if stable is None or stable == version:
                raise RolloutError(f"{version} is stable already, or nothing is stable yet")
            # A rejected version (failed the offline gate) starts only by an operator's
            # explicit command; the auto-start never starts one.
            if model.status in (ModelStatus.ROLLED_BACK, ModelStatus.RETIRED, ModelStatus.REJECTED):
                await self._blocking(
                    self._registry.set_status, version, ModelStatus.CANDIDATE, "rollout again"
                )
            elif model.status is not ModelStatus.CANDIDATE:
                raise RolloutError(f"{version} is {model.status}, not a candidate")
            first = self.steps[0]
            try:
                await self._blocking(
                    self._registry.set_canary,
                    version,
                    weight=first.weight,
                    shadow=first.shadow,
                    reason=f"rollout step {first.label}",
                )
            except RegistryError as exc:
                raise RolloutError(str(exc)) from None
            state: State = "shadow" if first.shadow else "canary"
            rollout = await self._blocking(
                self._store.create,
                version=version,
                stable_version=stable,
                state=state,
                weight=first.weight,
                reason=reason,
                now=self._clock(),
            )
            if self._prometheus is None:
                rollout = await self._save(
                    rollout.model_copy(
                        update={"state": "paused", "paused_from": state, "reason": NO_PROMETHEUS}
                    )
                )
                log.warning("rollout_paused_without_prometheus", version=version)
            self._metrics.show(rollout)
            log.info("rollout_started", version=version, stable=stable, step=first.label)
            await self._publish("rollout_started", rollout)
            return rollout

    async def pause(self, reason: str = "paused by an operator") -> Rollout:
        async with self._lock:
            rollout = await self._active()
            if rollout.state == "paused":
                return rollout
            rollout = await self._save(
                rollout.model_copy(
                    update={"state": "paused", "paused_from": rollout.state, "reason": reason}
                )
            )
            await self._publish("rollout_paused", rollout)
            return rollout

    async def resume(self, reason: str = "resumed by an operator") -> Rollout:
        async with self._lock:
            rollout = await self._active()
            if rollout.state != "paused":
                return rollout
            if self._prometheus is None:
                raise RolloutError(NO_PROMETHEUS)
            rollout = await self._save(
                rollout.model_copy(
                    update={
                        "state": rollout.paused_from or "canary",
                        "paused_from": None,
                        "reason": reason,
                        "step_started_at": self._clock(),
                    }
                )
            )
            await self._publish("rollout_resumed", rollout)
            return rollout

    async def abort(self, reason: str = "aborted by an operator") -> Rollout:
        async with self._lock:
            return await self._roll_back(await self._active(), reason)

    async def status(self) -> list[Rollout]:
        return await self._blocking(self._store.newest)

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop``: analyse the active rollout whenever its step is due."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # the controller must outlive any one failure
                log.exception("rollout_tick_failed", error=str(exc))
            await sleep_or_stop(stop, self.settings.rollout_tick_seconds)

    async def tick(self) -> Rollout | None:
        """One look at the active rollout; returns it as it stands afterwards."""
        async with self._lock:
            rollout = await self._blocking(self._store.active)
            if rollout is None:
                return None
            rollout = await self._follow_registry(rollout)
            if not rollout.active or rollout.state == "paused" or self._prometheus is None:
                return rollout
            elapsed = (self._clock() - rollout.step_started_at).total_seconds()
            if elapsed < self.settings.rollout_interval_seconds:
                return rollout
            return await self._analyse(rollout, self._prometheus)

    async def _analyse(self, rollout: Rollout, prometheus: PromQuery) -> Rollout:
        last = rollout.step_index == len(self.steps) - 1
        results = await self._analyser(
            prometheus,
            canary=rollout.version,
            stable=rollout.stable_version,
            window_seconds=self.settings.window_seconds,
            config=self.settings.analysis,
            require_labels=self.settings.rollout_require_labels,
            final_step=last,
        )
        verdict = overall_verdict(results)
        self._metrics.record(results)
        if isinstance(prometheus, PrometheusClient):
            self._metrics.prometheus_up.set(1 if await prometheus.ready() else 0)
        now = self._clock()
        step = self.steps[rollout.step_index]
        s = self.settings
        failures, inconclusives = rollout.failures, rollout.inconclusives
        if verdict == "fail":
            failures += 1
        elif verdict == "inconclusive":
            inconclusives += 1
        decision = decide(
            verdict,
            failures=failures,
            inconclusives=inconclusives,
            failure_limit=s.rollout_failure_limit,
            inconclusive_limit=s.rollout_inconclusive_limit,
            step=step.label,
            next_step=None if last else self.steps[rollout.step_index + 1].label,
        )
        analysis = Analysis(
            step_index=rollout.step_index,
            step=step.label,
            verdict=verdict,
            action=decision.text,
            checks=[r.to_dict() for r in results],
            analysed_at=now,
        )
        log.info(
            "rollout_analysed",
            version=rollout.version,
            step=step.label,
            verdict=verdict,
            action=decision.text,
            checks={r.check: r.verdict for r in results},
        )
        rollout = rollout.model_copy(
            update={"failures": failures, "inconclusives": inconclusives, "updated_at": now}
        )
        match decision.action:
            case Action.PROMOTE:
                return await self._promote(rollout, analysis)
            case Action.ROLL_BACK:
                return await self._roll_back(rollout, decision.text, analysis)
            case Action.ADVANCE:
                return await self._advance(rollout, analysis)
            case Action.HOLD:
                held = rollout.model_copy(update={"step_started_at": now})
                return await self._save(held, analysis)
            case _:
                assert_never(decision.action)

    # -- transitions -------------------------------------------------------------------

    async def _advance(self, rollout: Rollout, analysis: Analysis) -> Rollout:
        index = rollout.step_index + 1
        step = self.steps[index]
        await self._blocking(
            self._registry.set_canary,
            rollout.version,
            weight=step.weight,
            shadow=step.shadow,
            reason=f"rollout step {step.label}",
        )
        state: State = "shadow" if step.shadow else "canary"
        rollout = await self._save(
            rollout.model_copy(
                update={
                    "step_index": index,
                    "weight": step.weight,
                    "state": state,
                    "step_started_at": self._clock(),
                    "reason": f"step {analysis.step} passed",
                }
            ),
            analysis,
        )
        await self._publish("canary_weight_changed", rollout)
        return rollout

    async def _promote(self, rollout: Rollout, analysis: Analysis) -> Rollout:
        await self._blocking(self._registry.promote, rollout.version, "canary rollout passed")
        rollout = await self._finish(rollout, "promoted", 1.0, "every step passed", analysis)
        await self._publish("promoted", rollout)
        return rollout

    async def _roll_back(
        self, rollout: Rollout, reason: str, analysis: Analysis | None = None
    ) -> Rollout:
        status = (await self._blocking(self._registry.get, rollout.version)).status
        if status is ModelStatus.CANARY:
            await self._blocking(
                self._registry.set_status, rollout.version, ModelStatus.ROLLED_BACK, reason
            )
        rollout = await self._finish(rollout, "rolled_back", 0.0, reason, analysis)
        log.warning("rollout_rolled_back", version=rollout.version, reason=reason)
        await self._publish("rolled_back", rollout)
        return rollout

    async def _finish(
        self,
        rollout: Rollout,
        state: State,
        weight: float,
        reason: str,
        analysis: Analysis | None,
    ) -> Rollout:
        now = self._clock()
        rollout = await self._save(
            rollout.model_copy(
                update={
                    "state": state,
                    "paused_from": None,
                    "weight": weight,
                    "reason": reason,
                    "finished_at": now,
                    "updated_at": now,
                }
            ),
            analysis,
        )
        self._metrics.rollouts.labels(state).inc()
        return rollout

    async def _follow_registry(self, rollout: Rollout) -> Rollout:
        """Close a rollout whose version was promoted or rolled back outside it (by hand)."""
        status = (await self._blocking(self._registry.get, rollout.version)).status
        if status is ModelStatus.CANARY:
            return rollout
        state: State = "promoted" if status is ModelStatus.STABLE else "rolled_back"
        weight = 1.0 if state == "promoted" else 0.0
        reason = f"the version became {status} outside the rollout"
        return await self._finish(rollout, state, weight, reason, None)

    # -- helpers -----------------------------------------------------------------------

    async def _active(self) -> Rollout:
        rollout = await self._blocking(self._store.active)
        if rollout is None:
            raise NotFound("no rollout is in progress")
        return rollout

    async def _save(self, rollout: Rollout, analysis: Analysis | None = None) -> Rollout:
        rollout = rollout.model_copy(update={"updated_at": self._clock()})
        await self._blocking(self._store.save, rollout, analysis)
        self._metrics.show(rollout)
        return rollout.model_copy(
            update={"step": self.steps[min(rollout.step_index, len(self.steps) - 1)].label}
        )

    async def _publish(self, kind: ModelEventKind, rollout: Rollout) -> None:
        split = await self._blocking(self._registry.traffic)
        await self._events.publish(
            ModelEvent(
                event=kind,
                model_name=rollout.model_name,
                version=rollout.version,
                stable_version=split.stable,
                canary_version=split.canary,
                canary_weight=split.canary_weight,
                shadow=split.shadow,
                reason=rollout.reason[:2000],
                at=self._clock(),
            )
        )
