"""Auto-start on a real registry and rollout store, both databases: a candidate whose gate
passed starts its rollout once, one whose gate failed is rejected, others are left alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.rollout.autostart import AutoStart
from services.rollout.metrics import RolloutMetrics
from services.rollout.repository import RolloutStore
from services.rollout.service import RolloutController
from services.rollout.settings import RolloutSettings
from shared.db.session import make_engine
from shared.messages import ModelEvent
from shared.registry import ModelRegistry, ModelStatus
from tests.services.rollout.test_controller import Events, NoPrometheus, Script


@pytest.fixture
def settings(migrated_database_url: str, tmp_path: Path) -> RolloutSettings:
    return RolloutSettings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated_database_url,
        rollout_steps=("shadow", "50", "100"),
        prometheus_url="http://127.0.0.1:1",
    )


@pytest.fixture
def registry(settings: RolloutSettings) -> Iterator[ModelRegistry]:
    with ModelRegistry.open(settings) as opened:
        register(opened, "stable", None)
        yield opened


def register(registry: ModelRegistry, name: str, gate: dict[str, Any] | None) -> str:
    return registry.register(
        artifacts={"model.onnx": name.encode()},
        data_hash="d" * 64,
        params={},
        metrics={},
        thresholds={"mlops": 0.9},
        classes=["mlops", "other"],
        model_card="#",
        gate=gate,
    ).version


def gate(registry: ModelRegistry, verdict: str, against: str | None = None) -> dict[str, Any]:
    stable = registry.stable()
    assert stable is not None
    return {
        "verdict": verdict,
        "reason": f"{verdict} on test",
        "stable_version": against or stable.version,
    }


@pytest.fixture
def store(settings: RolloutSettings) -> Iterator[RolloutStore]:
    engine = make_engine(settings.database_url)
    yield RolloutStore(engine, settings.model_name, settings.step_labels)
    engine.dispose()


@pytest.fixture
def controller(
    settings: RolloutSettings, registry: ModelRegistry, store: RolloutStore
) -> RolloutController:
    return RolloutController(
        settings, store, registry, Events(), NoPrometheus(), RolloutMetrics(CollectorRegistry()),
        analyser=Script(),
    )  # fmt: skip


@pytest.fixture
def auto(
    settings: RolloutSettings,
    registry: ModelRegistry,
    controller: RolloutController,
    store: RolloutStore,
) -> AutoStart:
    return AutoStart(settings, controller, registry, store)


async def test_a_passed_candidate_starts_its_rollout_once(
    auto: AutoStart, registry: ModelRegistry, controller: RolloutController
) -> None:
    version = register(registry, "good", gate(registry, "passed"))
    assert await auto.reconcile() == [f"{version} started"]
    traffic = registry.traffic()
    assert (traffic.canary, traffic.shadow) == (version, True)
    assert registry.get(version).status is ModelStatus.CANARY
    assert await auto.reconcile() == []  # the rollout runs: nothing more to do

    # Back to candidate by hand after an abort: still never a second automatic rollout.
    await controller.abort("test")
    registry.set_status(version, ModelStatus.CANDIDATE, "by hand")
    assert await auto.reconcile() == []
    assert registry.get(version).status is ModelStatus.CANDIDATE


async def test_a_failed_candidate_is_rejected_with_the_reason_and_an_operator_may_override(
    auto: AutoStart, registry: ModelRegistry, controller: RolloutController
) -> None:
    version = register(registry, "bad", gate(registry, "failed"))
    assert await auto.reconcile() == [f"{version} rejected"]
    assert registry.get(version).status is ModelStatus.REJECTED
    last = registry.history(version)[-1]
    assert last.to_status is ModelStatus.REJECTED
    assert last.reason == "offline gate failed: failed on test"
    assert registry.traffic().canary is None
    assert await auto.reconcile() == []

    started = await controller.start(version, "an operator overrides the gate")
    assert started.version == version
    assert registry.get(version).status is ModelStatus.CANARY


async def test_candidates_without_a_current_passed_gate_are_left_to_operators(
    auto: AutoStart, registry: ModelRegistry
) -> None:
    old = register(registry, "gated-elsewhere", gate(registry, "passed", against="v000000000000"))
    not_run = register(registry, "not-run", gate(registry, "not_run"))
    ungated = register(registry, "ungated", None)
    assert await auto.reconcile() == []
    for version in (old, not_run, ungated):
        assert registry.get(version).status is ModelStatus.CANDIDATE


async def test_an_inconclusive_gate_leaves_the_decision_to_the_canary(
    auto: AutoStart, registry: ModelRegistry, store: RolloutStore
) -> None:
    version = register(registry, "few-items", gate(registry, "not_run") | {"inconclusive": True})
    assert await auto.reconcile() == [f"{version} started"]
    assert registry.traffic().canary == version
    active = store.active()
    assert active is not None
    assert active.reason.startswith("started automatically: offline gate inconclusive")


async def test_only_the_newest_passed_candidate_starts(
    auto: AutoStart, registry: ModelRegistry
) -> None:
    register(registry, "older", gate(registry, "passed"))
    newer = register(registry, "newer", gate(registry, "passed"))
    assert await auto.reconcile() == [f"{newer} started"]


def test_only_candidate_events_of_this_model_wake_it(auto: AutoStart) -> None:
    def event(kind: str, model: str = "tagstream-tagger") -> bytes:
        return ModelEvent.model_validate(
            {"event": kind, "model_name": model, "version": "v1", "at": "2026-12-05T12:00:00Z"}
        ).encode()

    assert auto.is_new_candidate(event("candidate_registered"))
    assert not auto.is_new_candidate(event("promoted"))
    assert not auto.is_new_candidate(event("candidate_registered", "another-model"))
    assert not auto.is_new_candidate(b"not json")
    assert not auto.is_new_candidate(None)
