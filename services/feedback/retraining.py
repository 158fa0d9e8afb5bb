"""The retraining trigger and the periodic refresh of accuracy and drift.

Trigger rules (``decide``), checked every ``feedback_refresh_seconds``:

* ``labels``: the store holds at least ``feedback_retrain_min_new_labels`` more usable
  gold labels than the newest registered version was trained with (its
  ``params.gold_labels``; 0 for a version trained without feedback);
* ``drift``: the drift score (out-of-vocabulary share, see ``drift.py``) exceeds
  ``feedback_drift_threshold`` over at least ``feedback_drift_min_items`` recent items;
* never while a run is going, nor within ``feedback_retrain_cooldown_seconds`` of the
  previous automatic run.

A run trains on the dataset plus the gold set (``shared.ml.training.train``) in a child
process (``shared.ml.training_job``: the service never loads the training stack, and
stopping the service stops the run) and registers the result, which is a ``candidate``
whenever a stable version exists, announced on ``models.events`` like every candidate
(``register_candidate``). Every run is recorded in ``retrain_runs``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from services.feedback.drift import VocabularyCache, oov_share
from services.feedback.gold import load_gold
from services.feedback.metrics import AccuracyRow, AuditRow, FeedbackMetrics, PairedRow
from services.feedback.repository import FeedbackStore
from services.feedback.settings import FeedbackSettings
from shared.ml.training_job import TrainingRequest, run_training_job
from shared.registry import ModelRegistry
from shared.stopping import sleep_or_stop

log = structlog.get_logger("services.feedback")


@dataclass(frozen=True, slots=True)
class TriggerInputs:
    gold_labels: int
    trained_gold_labels: int
    drift: float | None
    seconds_since_last_run: float | None


def decide(inputs: TriggerInputs, settings: FeedbackSettings) -> str | None:
    """``"labels"``, ``"drift"`` or None (see the module docstring)."""
    since = inputs.seconds_since_last_run
    if since is not None and since < settings.feedback_retrain_cooldown_seconds:
        return None
    if inputs.gold_labels - inputs.trained_gold_labels >= settings.feedback_retrain_min_new_labels:
        return "labels"
    if inputs.drift is not None and inputs.drift > settings.feedback_drift_threshold:
        return "drift"
    return None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run_id: int
    trigger: str
    result: str
    label_count: int
    version: str | None = None
    status: str | None = None
    error: str | None = None


async def run_retraining(
    settings: FeedbackSettings,
    store: FeedbackStore,
    *,
    trigger: str,
    drift: float | None = None,
    data_location: str | None = None,
) -> RunOutcome:
    """Train on the dataset plus every gold label and register the version.

    Training runs in a child process (``shared.ml.training_job``): the service never
    loads the training stack, keeps serving meanwhile, and cancelling this coroutine
    stops the run, which is then recorded as failed.
    """
    gold = await asyncio.to_thread(load_gold, settings.database_url, settings.approved_tags)
    run_id = await asyncio.to_thread(
        store.start_run, trigger, len(gold.items), gold.gold_hash, drift
    )
    log.info("retrain_started", run_id=run_id, trigger=trigger, gold_labels=len(gold.items))
    request = TrainingRequest(settings, data_location=data_location, gold=gold)
    try:
        outcome = await run_training_job(request)
    except asyncio.CancelledError:
        await asyncio.to_thread(
            store.finish_run, run_id, result="failed", error="stopped with the service"
        )
        log.warning("retrain_stopped", run_id=run_id, trigger=trigger)
        raise
    if outcome.error is not None or outcome.version is None:
        error = outcome.error or "the training process reported no version"
        await asyncio.to_thread(store.finish_run, run_id, result="failed", error=error)
        log.error("retrain_failed", run_id=run_id, trigger=trigger, error=error)
        return RunOutcome(run_id, trigger, "failed", len(gold.items), error=error)
    await asyncio.to_thread(
        store.finish_run,
        run_id,
        result="ok",
        version=outcome.version,
        version_status=outcome.status,
    )
    log.info(
        "retrain_finished",
        run_id=run_id,
        trigger=trigger,
        model_version=outcome.version,
        status=outcome.status,
        gold_labels=len(gold.items),
        announced=outcome.announced,
    )
    return RunOutcome(run_id, trigger, "ok", len(gold.items), outcome.version, outcome.status)


def trained_gold_labels(registry: ModelRegistry) -> int:
    """Gold labels the newest registered version was trained with."""
    versions = registry.list_versions()
    if not versions:
        return 0
    newest = max(versions, key=lambda v: v.created_at)
    return int(newest.params.get("gold_labels", 0))


class FeedbackMonitor:
    """Recompute accuracy and drift from the store, prune it, and trigger retraining."""

    def __init__(
        self,
        settings: FeedbackSettings,
        store: FeedbackStore,
        registry: ModelRegistry,
        metrics: FeedbackMetrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.metrics = metrics
        self.accuracy: list[AccuracyRow] = []
        self.audit: list[AuditRow] = []
        self.paired: list[PairedRow] = []
        self.drift: float | None = None
        self.training: asyncio.Task[RunOutcome] | None = None
        self._vocabulary = VocabularyCache()

    def refresh(self) -> TriggerInputs:
        """One blocking pass over the store (run it in a worker thread)."""
        s = self.settings
        self.accuracy = self.store.accuracy()
        self.metrics.set_accuracy(self.accuracy)
        self.audit = self.store.audit_precision()
        self.metrics.set_audit_precision(self.audit, confidence=s.feedback_precision_confidence)
        self.paired = self.store.paired()
        self.metrics.set_paired(self.paired)
        self.metrics.target_precision.set(s.target_precision)
        self.metrics.audit_min_samples.set(s.feedback_audit_min_samples)
        self.store.prune_items(s.feedback_items_max)
        self.drift = self._drift()
        if self.drift is not None:
            self.metrics.drift_score.set(self.drift)
        runs = self.store.runs(limit=1)
        since = (datetime.now(UTC) - runs[0].started_at).total_seconds() if runs else None
        return TriggerInputs(
            gold_labels=self.store.gold_count(),
            trained_gold_labels=trained_gold_labels(self.registry),
            drift=self.drift,
            seconds_since_last_run=since,
        )

    def _drift(self) -> float | None:
        s = self.settings
        texts = self.store.recent_texts(s.feedback_drift_window)
        if len(texts) < s.feedback_drift_min_items:
            return None
        vocabulary = self._vocabulary.get(self.registry)
        if vocabulary is None:
            return None
        return oov_share(texts, vocabulary)

    async def tick(self) -> RunOutcome | None:
        """Refresh; start a run when the rules say so (not awaited)."""
        inputs = await asyncio.to_thread(self.refresh)
        if not self.settings.feedback_retrain_enabled or self.running:
            return None
        trigger = decide(inputs, self.settings)
        if trigger is not None:
            self.start(trigger)
        return None

    @property
    def running(self) -> bool:
        return self.training is not None and not self.training.done()

    def start(self, trigger: str) -> asyncio.Task[RunOutcome]:
        """Start a run in a child process; the event loop keeps serving meanwhile."""
        if self.training is not None and not self.training.done():
            return self.training
        task = asyncio.create_task(self._run(trigger), name="feedback-retrain")
        self.training = task
        return task

    async def _run(self, trigger: str) -> RunOutcome:
        outcome = await run_retraining(self.settings, self.store, trigger=trigger, drift=self.drift)
        self.metrics.retrain_runs.labels(trigger=trigger, result=outcome.result).inc()
        return outcome

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``feedback_refresh_seconds`` until ``stop``; errors never end it.

        On ``stop`` a run still going is stopped too (its training process terminated
        and the run recorded as failed) rather than left behind the service.
        """
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception as exc:
                    log.exception("refresh_failed", error=str(exc))
                await sleep_or_stop(stop, self.settings.feedback_refresh_seconds)
        finally:
            await self.stop_training()

    async def stop_training(self) -> None:
        """Stop the run in progress, if any, and wait until it is recorded."""
        task = self.training
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def summary(self) -> dict[str, Any]:
        return {
            "drift_score": self.drift,
            "retraining": self.running,
            "refreshed_at": datetime.now(UTC).isoformat(),
        }
