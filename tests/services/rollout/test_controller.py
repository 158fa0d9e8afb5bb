"""The rollout state machine on a real registry and store, with scripted analyses.

The analysis itself is tested on recorded series (test_analysis.py) and end to end on a
real Prometheus (tests/flows/test_rollout_flow.py); here each analysis returns what the
test scripts, so every transition and limit is checked deterministically.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.rollout.analysis import WAITING_FOR_LABELS, CheckResult
from services.rollout.app import create_app
from services.rollout.metrics import RolloutMetrics
from services.rollout.prometheus import Sample
from services.rollout.repository import RolloutStore
from services.rollout.service import NO_PROMETHEUS, RolloutController, RolloutError
from services.rollout.settings import RolloutSettings
from shared.db.session import make_engine
from shared.messages import ModelEvent
from shared.registry import ModelRegistry, ModelStatus
from tests.fixtures.db import migrated


class Events:
    def __init__(self) -> None:
        self.sent: list[ModelEvent] = []

    async def publish(self, event: ModelEvent) -> None:
        self.sent.append(event)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Script:
    """Answers each analysis with the next scripted overall verdict."""

    def __init__(self, *verdicts: str) -> None:
        self.verdicts: list[str] = list(verdicts)
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, prom: object, **kwargs: Any) -> list[CheckResult]:
        self.calls.append(kwargs)
        overall = self.verdicts.pop(0)
        traffic = CheckResult("traffic", "pass", {"canary": "q"}, {"canary": 500.0}, ">=", "ok")
        if overall == "hold":
            labels = f"{WAITING_FOR_LABELS}: needs 30 gold labels per version, has 3."
            last = CheckResult(
                "online_accuracy", "inconclusive", {}, {}, "bounds", labels, waiting_for_labels=True
            )
        else:
            last = CheckResult(
                "review_share", overall, {"canary": "q2"}, {"canary": 0.1}, "<=", "x"
            )
        return [traffic, last]


class NoPrometheus:
    async def query(self, promql: str) -> list[Sample]:
        raise AssertionError("not asked")


@pytest.fixture
def settings(tmp_path: Path) -> RolloutSettings:
    return RolloutSettings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'tagstream.db'}"),
        rollout_steps=("shadow", "10", "50", "100"),
        rollout_interval_seconds=30,
        rollout_failure_limit=2,
        rollout_inconclusive_limit=2,
        rollout_admin_keys=("admin-key",),
        prometheus_url="http://127.0.0.1:1",
    )


@pytest.fixture
def registry(settings: RolloutSettings) -> Iterator[ModelRegistry]:
    with ModelRegistry.open(settings) as opened:
        for n in (1, 2):
            opened.register(
                artifacts={"model.onnx": f"model-{n}".encode()},
                data_hash="d" * 64,
                params={},
                metrics={},
                thresholds={"mlops": 0.9},
                classes=["mlops", "other"],
                model_card="#",
            )
        yield opened


def controller(
    settings: RolloutSettings,
    registry: ModelRegistry,
    script: Script,
    *,
    prometheus: bool = True,
) -> tuple[RolloutController, Events, Clock]:
    engine = make_engine(settings.database_url)
    store = RolloutStore(engine, settings.model_name, settings.step_labels)
    events, clock = Events(), Clock()
    made = RolloutController(
        settings,
        store,
        registry,
        events,
        NoPrometheus() if prometheus else None,
        RolloutMetrics(CollectorRegistry()),
        clock=clock,
        analyser=script,
    )
    return made, events, clock


def candidate(registry: ModelRegistry) -> str:
    return next(v.version for v in registry.list_versions() if v.status == "candidate")


async def walk(ctl: RolloutController, clock: Clock, times: int) -> None:
    for _ in range(times):
        clock.advance(31)
        await ctl.tick()


async def test_a_passing_candidate_walks_every_step_and_is_promoted(
    settings: RolloutSettings, registry: ModelRegistry
) -> None:
    ctl, events, clock = controller(settings, registry, Script("pass", "pass", "pass", "pass"))
    version = candidate(registry)

    started = await ctl.start(version)
    assert (started.state, started.weight) == ("shadow", 0.0)
    assert registry.traffic().shadow is True
    await ctl.tick()  # not due yet: nothing happens
    assert registry.traffic().shadow is True

    seen = []
    for _ in range(3):
        clock.advance(31)
        rollout = await ctl.tick()
        assert rollout is not None
        seen.append((rollout.state, rollout.weight, registry.traffic().canary_weight))
    assert seen == [("canary", 0.1, 0.1), ("canary", 0.5, 0.5), ("canary", 1.0, 1.0)]

    await walk(ctl, clock, 1)
    (done,) = await ctl.status()
    assert done.state == "promoted"
    assert registry.stable() is not None
    assert registry.stable().version == version  # type: ignore[union-attr]
    assert registry.traffic().canary is None
    assert [a.verdict for a in done.analyses] == ["pass"] * 4
    assert done.analyses[0].action == "promote"
    assert [a.action for a in done.analyses[1:]] == [
        "advance to 100%",
        "advance to 50%",
        "advance to 10%",
    ]
    assert done.analyses[0].checks[1]["queries"] == {"canary": "q2"}
    assert [e.event for e in events.sent] == [
        "rollout_started",
        "canary_weight_changed",
        "canary_weight_changed",
        "canary_weight_changed",
        "promoted",
    ]
    assert events.sent[-1].stable_version == version
    assert ctl._analyser.calls[-1]["final_step"] is True  # type: ignore[attr-defined]


async def test_a_failing_candidate_is_rolled_back_at_the_failure_limit(
    settings: RolloutSettings, registry: ModelRegistry
) -> None:
    ctl, events, clock = controller(settings, registry, Script("fail", "fail"))
    version = candidate(registry)
    await ctl.start(version)

    await walk(ctl, clock, 1)
    held = (await ctl.status())[0]
    assert (held.state, held.failures, held.step) == ("shadow", 1, "shadow")
    await walk(ctl, clock, 1)

    (done,) = await ctl.status()
    assert done.state == "rolled_back"
    assert done.weight == 0.0
    assert "2 failed analyses" in done.reason
    assert done.reason == "roll back: 2 failed analyses (limit 2)"
    assert [a.action for a in done.analyses] == [done.reason, "hold at shadow"]
    assert registry.get(version).status is ModelStatus.ROLLED_BACK
    assert registry.traffic().canary is None
    assert events.sent[-1].event == "rolled_back"


async def test_inconclusive_analyses_hold_then_roll_back_and_never_promote(
    settings: RolloutSettings, registry: ModelRegistry
) -> None:
    ctl, _, clock = controller(settings, registry, Script("pass", "inconclusive", "inconclusive"))
    await ctl.start(candidate(registry))

    await walk(ctl, clock, 2)
    held = (await ctl.status())[0]
    assert (held.state, held.step, held.inconclusives, held.failures) == ("canary", "10%", 1, 0)
    await walk(ctl, clock, 1)

    (done,) = await ctl.status()
    assert done.state == "rolled_back"
    assert "inconclusive" in done.reason


async def test_hold_waits_without_counting(
    settings: RolloutSettings, registry: ModelRegistry
) -> None:
    ctl, _, clock = controller(settings, registry, Script("hold", "hold", "hold", "pass"))
    await ctl.start(candidate(registry))

    await walk(ctl, clock, 3)
    held = (await ctl.status())[0]
    assert (held.state, held.step, held.failures, held.inconclusives) == ("shadow", "shadow", 0, 0)


async def test_pause_resume_and_abort(settings: RolloutSettings, registry: ModelRegistry) -> None:
    ctl, events, clock = controller(settings, registry, Script("pass"))
    version = candidate(registry)
    await ctl.start(version)

    paused = await ctl.pause("looking into it")
    assert paused.state == "paused"
    assert paused.paused_from == "shadow"
    await walk(ctl, clock, 3)  # a paused rollout is never analysed
    assert (await ctl.status())[0].state == "paused"
    resumed = await ctl.resume()
    assert resumed.state == "shadow"
    with pytest.raises(RolloutError, match="abort it first"):
        await ctl.start(version)

    aborted = await ctl.abort("wrong data")
    assert aborted.state == "rolled_back"
    assert registry.get(version).status is ModelStatus.ROLLED_BACK
    assert [e.event for e in events.sent][-3:] == [
        "rollout_paused",
        "rollout_resumed",
        "rolled_back",
    ]


async def test_without_prometheus_a_rollout_stays_paused(
    settings: RolloutSettings, registry: ModelRegistry
) -> None:
    ctl, _, clock = controller(settings, registry, Script(), prometheus=False)

    started = await ctl.start(candidate(registry))

    assert started.state == "paused"
    assert started.reason == NO_PROMETHEUS
    await walk(ctl, clock, 5)
    assert (await ctl.status())[0].state == "paused"
    with pytest.raises(RolloutError, match="no Prometheus"):
        await ctl.resume()


async def test_a_version_promoted_by_hand_ends_its_rollout(
    settings: RolloutSettings, registry: ModelRegistry
) -> None:
    ctl, _, _ = controller(settings, registry, Script())
    version = candidate(registry)
    await ctl.start(version)

    registry.promote(version, reason="by hand")
    await ctl.tick()

    assert (await ctl.status())[0].state == "promoted"


async def test_the_http_api_needs_an_admin_key_and_names_what_is_wrong(
    settings: RolloutSettings, registry: ModelRegistry
) -> None:
    app = create_app(settings, events=Events(), run_loop=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://rollout") as client,
    ):
        assert (await client.get("/v1/rollouts")).status_code == 401
        auth = {"Authorization": "Bearer admin-key"}
        missing = await client.post("/v1/rollouts", json={"version": "v0"}, headers=auth)
        assert missing.status_code == 404
        assert "no version" in missing.json()["detail"][0]["reason"]
        bad = await client.post("/v1/rollouts", json={}, headers=auth)
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "version"
        # NUL and other control characters: a 422 naming the field (PostgreSQL refuses NUL
        # in text, which schemathesis once turned into a 500).
        for body, field in (
            ({"version": "\u0000"}, "version"),
            ({"version": "v0", "reason": "a\u0000b"}, "reason"),
        ):
            nul = await client.post("/v1/rollouts", json=body, headers=auth)
            assert nul.status_code == 422
            assert nul.json()["detail"][0]["field"] == field
        paused = await client.post("/v1/rollouts/pause", json={"reason": "\u0007"}, headers=auth)
        assert paused.status_code == 422

        version = candidate(registry)
        started = await client.post("/v1/rollouts", json={"version": version}, headers=auth)
        assert started.status_code == 201
        assert started.json()["state"] == "shadow"
        status = (await client.get("/v1/rollouts", headers=auth)).json()
        assert status["rollouts"][0]["version"] == version
        assert status["prometheus"]["configured"] is True
        aborted = await client.post("/v1/rollouts/abort", headers=auth)
        assert aborted.json()["state"] == "rolled_back"
        assert (await client.post("/v1/rollouts/pause", headers=auth)).status_code == 404
        metrics = (await client.get("/metrics")).text
        assert 'tagstream_rollout_rollouts_total{outcome="rolled_back"} 1.0' in metrics
