"""Rollouts that start themselves: gated candidates roll out, failed ones are rejected.

Training registers every version with its offline gate verdict (``shared.ml.gate``) and
announces it on ``models.events`` (``candidate_registered``). With
``TAGSTREAM_ROLLOUT_AUTO_START=true`` this service acts on it:

* a candidate whose gate ``passed`` against the current stable version starts its rollout,
  exactly as ``tagstream rollout start`` would (``RolloutController.start``); so does one
  whose gate was ``inconclusive`` (too few items neither version fitted on to judge, and
  not proven worse): the rollout's online checks, paired accuracy included, decide it;
* a candidate whose gate ``failed`` is marked ``rejected`` in the registry, with the reason;
* no gate (registered before the gate existed), ``not_run`` for want of a stable version,
  or a gate run against another stable version than today's: left as a candidate for an
  operator.

The event only wakes the work up: the registry is the truth, and the same reconciliation
also runs at start-up and on every poll, so a missed event (broker down, service
restarting) never loses a candidate. One rollout per candidate: a version that has ever
had a rollout is never started again by this loop, and the work is serialised.
Only the newest such candidate starts: an older one was superseded by it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from aiokafka.errors import KafkaError

from services.rollout.repository import RolloutStore
from services.rollout.service import RolloutController, RolloutError
from services.rollout.settings import RolloutSettings
from shared.kafka import create_consumer
from shared.kafka.backoff import Backoff
from shared.kafka.topics import MODELS
from shared.messages import MessageError, ModelEvent
from shared.registry import ModelRegistry, ModelStatus, ModelVersion, RegistryError
from shared.stopping import sleep_or_stop

log = structlog.get_logger("services.rollout")
T = TypeVar("T")


class AutoStart:
    """Acts on the gate verdicts of new candidates; see the module docstring."""

    def __init__(
        self,
        settings: RolloutSettings,
        controller: RolloutController,
        registry: ModelRegistry,
        store: RolloutStore,
    ) -> None:
        self._settings = settings
        self._controller = controller
        self._registry = registry
        self._store = store
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    async def _blocking(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(function, *args)

    async def reconcile(self) -> list[str]:
        """One look at the registry; returns what was done, one line per version."""
        async with self._lock:
            versions = await self._blocking(self._registry.list_versions)
            stable = next((v.version for v in versions if v.status is ModelStatus.STABLE), None)
            done: list[str] = []
            fresh = [
                v
                for v in versions  # newest first
                if v.status is ModelStatus.CANDIDATE
                and v.gate is not None
                and not await self._blocking(self._store.has_rollout, v.version)
            ]
            for version in fresh:
                if version.gate is not None and version.gate.get("verdict") == "failed":
                    done.append(await self._reject(version))
            passed = [
                v
                for v in fresh
                if v.gate is not None
                and (v.gate.get("verdict") == "passed" or v.gate.get("inconclusive") is True)
                and v.gate.get("stable_version") == stable
            ]
            if passed:
                done.append(await self._start(passed[0]))
            return [line for line in done if line]

    async def _reject(self, version: ModelVersion) -> str:
        gate = version.gate or {}
        reason = f"offline gate failed: {gate.get('reason', 'no reason recorded')}"[:2000]
        try:
            await self._blocking(
                self._registry.set_status, version.version, ModelStatus.REJECTED, reason
            )
        except RegistryError as exc:  # changed meanwhile (e.g. started by hand)
            log.warning("candidate_not_rejected", version=version.version, error=str(exc))
            return ""
        log.warning("candidate_rejected", version=version.version, reason=reason)
        return f"{version.version} rejected"

    async def _start(self, version: ModelVersion) -> str:
        gate = version.gate or {}
        outcome = "inconclusive" if gate.get("inconclusive") is True else "passed"
        reason = f"started automatically: offline gate {outcome} against {gate['stable_version']}"
        try:
            await self._controller.start(version.version, reason)
        except RolloutError as exc:  # another rollout runs: the next poll tries again
            log.info("auto_start_waiting", version=version.version, reason=exc.reason)
            return ""
        log.info("rollout_auto_started", version=version.version)
        return f"{version.version} started"

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile now, on every ``candidate_registered`` event, and every poll."""
        poll = self._settings.rollout_auto_start_poll_seconds
        while not stop.is_set():
            try:
                await self.reconcile()
            except Exception as exc:  # the loop must outlive any one failure
                log.exception("auto_start_failed", error=str(exc))
            await _first_of(self._wake, stop, seconds=poll)
            self._wake.clear()

    async def watch_events(self, stop: asyncio.Event) -> None:
        """Listen to ``models.events`` with no consumer group (only new events matter: the
        reconciliation covers the past) and wake ``run`` on a candidate of this model."""
        s = self._settings
        backoff = Backoff(s.rollout_auto_start_poll_seconds)
        while not stop.is_set():
            consumer = create_consumer(s, MODELS.name(s), group_id=None, auto_offset_reset="latest")
            try:
                await consumer.start()
                backoff.reset()
                while not stop.is_set():
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        for record in records:
                            if self.is_new_candidate(record.value):
                                self._wake.set()
            except KafkaError as exc:
                log.warning("model_events_unavailable", error=repr(exc))
                await sleep_or_stop(stop, backoff.next())
            finally:
                with contextlib.suppress(KafkaError):
                    await consumer.stop()

    def is_new_candidate(self, value: bytes | None) -> bool:
        """Whether a ``models.events`` record announces a candidate of this model."""
        try:
            event = ModelEvent.decode(value)
        except MessageError:
            return False  # a notification only: a malformed one costs a poll's wait
        return (
            event.event == "candidate_registered" and event.model_name == self._settings.model_name
        )


async def _first_of(*events: asyncio.Event, seconds: float) -> None:
    """Return when any of ``events`` is set, or after ``seconds``."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
