from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from shared.registry import (
    ArtifactCorrupted,
    ArtifactNotFound,
    InvalidRegistration,
    InvalidTransition,
    ModelRegistry,
    ModelStatus,
    ModelVersion,
    VersionNotFound,
    version_id,
)
from shared.settings import Settings
from tests.fixtures.db import migrated


@pytest.fixture
def registry(settings: Settings) -> Iterator[ModelRegistry]:
    with ModelRegistry.open(settings) as opened:
        yield opened


def register(registry: ModelRegistry, model: bytes, **overrides: object) -> ModelVersion:
    arguments: dict[str, object] = {
        "artifacts": {"model.onnx": model, "vocabulary.json": b'["a", "b"]'},
        "data_hash": "d" * 64,
        "params": {"c": 10.0, "ngram_max": 2},
        "metrics": {"f1": 0.91, "per_class": {"mlops": {"precision": 0.97}}},
        "thresholds": {"mlops": 0.8, "other": 0.95},
        "classes": ["mlops", "other"],
        "model_card": "# Tagger\n",
    }
    arguments.update(overrides)
    return registry.register(**arguments)  # type: ignore[arg-type]


def test_first_version_is_stable_and_later_ones_are_candidates(registry: ModelRegistry) -> None:
    first = register(registry, b"model-1")
    second = register(registry, b"model-2")

    assert first.status is ModelStatus.STABLE
    assert first.parent_version is None
    assert second.status is ModelStatus.CANDIDATE
    assert second.parent_version == first.version
    assert registry.stable() == first


def test_version_id_comes_from_the_model_bytes(registry: ModelRegistry) -> None:
    version = register(registry, b"model-1")

    assert version.version == "v" + hashlib.sha256(b"model-1").hexdigest()[:12]
    assert version.version == version_id(b"model-1")
    assert version.created_at.tzinfo is not None
    assert version.created_at.utcoffset() == UTC.utcoffset(None)


def test_registered_version_reads_back_whole(registry: ModelRegistry) -> None:
    registered = register(registry, b"model-1")

    loaded = registry.get(registered.version)

    assert loaded == registered
    assert loaded.metrics["per_class"] == {"mlops": {"precision": 0.97}}
    assert loaded.artifacts["model.onnx"].sha256 == hashlib.sha256(b"model-1").hexdigest()
    assert loaded.artifacts["model.onnx"].size_bytes == len(b"model-1")


def test_registering_the_same_model_again_returns_it_unchanged(registry: ModelRegistry) -> None:
    first = register(registry, b"model-1")
    register(registry, b"model-2")

    again = register(registry, b"model-1", model_card="different card", data_hash="other")

    assert again == first
    assert len(registry.list_versions()) == 2


def test_artifacts_are_stored_under_the_version_folder(
    registry: ModelRegistry, settings: Settings
) -> None:
    version = register(registry, b"model-1").version

    folder = settings.registry_dir / settings.model_name / version
    assert registry.version_dir(version) == folder
    assert registry.artifact_path(version, "model.onnx") == folder / "model.onnx"
    assert registry.artifact_bytes(version, "vocabulary.json") == b'["a", "b"]'
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "vocabulary.json"]


def test_tampered_or_missing_artifacts_are_refused(registry: ModelRegistry) -> None:
    version = register(registry, b"model-1").version
    path = registry.artifact_path(version, "model.onnx")

    path.write_bytes(b"tampered")
    with pytest.raises(ArtifactCorrupted, match="sha256"):
        registry.artifact_path(version, "model.onnx")
    with pytest.raises(ArtifactCorrupted, match="sha256"):
        registry.artifact_bytes(version, "model.onnx")

    path.unlink()
    with pytest.raises(ArtifactCorrupted, match="missing"):
        registry.artifact_bytes(version, "model.onnx")


def test_unknown_versions_and_artifacts_raise(registry: ModelRegistry) -> None:
    version = register(registry, b"model-1").version

    with pytest.raises(VersionNotFound, match="v000000000000"):
        registry.get("v000000000000")
    with pytest.raises(VersionNotFound):
        registry.promote("v000000000000")
    with pytest.raises(VersionNotFound):
        registry.history("v000000000000")
    with pytest.raises(ArtifactNotFound, match=r"weights\.bin"):
        registry.artifact_path(version, "weights.bin")


@pytest.fixture
def sqlite_registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    """For checks that never reach the database: one backend is enough."""
    settings = Settings(
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'registry.db'}"),
        environment="test",
    )
    with ModelRegistry.open(settings) as opened:
        yield opened


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"artifacts": {"weights.bin": b"x"}}, "model.onnx"),
        ({"artifacts": {"model.onnx": b"x", "../escape": b"x"}}, "plain file names"),
        ({"thresholds": {"unknown": 0.5}}, "unknown"),
        ({"thresholds": {"mlops": float("inf")}}, "finite"),
        ({"metrics": {"precision": float("nan")}}, "metrics must be plain JSON"),
        ({"params": {"path": object()}}, "params must be plain JSON"),
    ],
)
def test_invalid_registrations_are_refused(
    sqlite_registry: ModelRegistry, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRegistration, match=message):
        register(sqlite_registry, b"model-1", **overrides)
    assert sqlite_registry.list_versions() == []


def test_unknown_parent_version_is_refused(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidRegistration, match="parent version"):
        register(registry, b"model-1", parent_version="v000000000000")

    assert registry.list_versions() == []


def test_versions_are_listed_newest_first(registry: ModelRegistry) -> None:
    versions = [register(registry, f"model-{i}".encode()).version for i in range(4)]

    assert [v.version for v in registry.list_versions()] == versions[::-1]


def test_promote_swaps_stable_and_records_history(registry: ModelRegistry) -> None:
    old = register(registry, b"model-1").version
    new = register(registry, b"model-2").version

    promoted = registry.promote(new, reason="better f1")

    assert promoted.status is ModelStatus.STABLE
    assert registry.get(old).status is ModelStatus.RETIRED
    assert registry.stable() == promoted
    assert [(c.from_status, c.to_status, c.reason) for c in registry.history(new)] == [
        (None, ModelStatus.CANDIDATE, "registered"),
        (ModelStatus.CANDIDATE, ModelStatus.STABLE, "better f1"),
    ]
    assert [(c.from_status, c.to_status, c.reason) for c in registry.history(old)] == [
        (None, ModelStatus.STABLE, "registered"),
        (ModelStatus.STABLE, ModelStatus.RETIRED, f"replaced by {new}"),
    ]


def test_promoting_the_stable_version_is_a_no_op(registry: ModelRegistry) -> None:
    stable = register(registry, b"model-1")

    assert registry.promote(stable.version) == stable
    assert len(registry.history(stable.version)) == 1


def test_canary_rollout_and_rollback(registry: ModelRegistry) -> None:
    register(registry, b"model-1")
    version = register(registry, b"model-2").version

    registry.set_status(version, ModelStatus.CANARY, "5% of traffic")
    rolled_back = registry.set_status(version, "rolled_back", "precision dropped")

    assert rolled_back.status is ModelStatus.ROLLED_BACK
    assert [c.to_status for c in registry.history(version)] == [
        ModelStatus.CANDIDATE,
        ModelStatus.CANARY,
        ModelStatus.ROLLED_BACK,
    ]


@pytest.mark.parametrize(
    ("path", "forbidden"),
    [
        ([], ModelStatus.CANARY),  # stable -> canary
        ([ModelStatus.RETIRED], ModelStatus.STABLE),  # retired must become a candidate first
    ],
)
def test_invalid_transitions_raise(
    registry: ModelRegistry, path: list[ModelStatus], forbidden: ModelStatus
) -> None:
    version = register(registry, b"model-1").version
    for status in path:
        registry.set_status(version, status, "setup")

    with pytest.raises(InvalidTransition, match="can become"):
        registry.set_status(version, forbidden, "not allowed")

    assert registry.get(version).status is (path[-1] if path else ModelStatus.STABLE)


def test_unknown_status_is_an_invalid_transition(registry: ModelRegistry) -> None:
    version = register(registry, b"model-1").version

    with pytest.raises(InvalidTransition, match="unknown status"):
        registry.set_status(version, "deleted", "typo")


def test_concurrent_promotions_leave_exactly_one_stable(settings: Settings) -> None:
    with ModelRegistry.open(settings) as setup:
        register(setup, b"model-1")
        candidates = [register(setup, f"model-{i}".encode()).version for i in (2, 3)]

    # Separate registries (engines), as two processes would have.
    registries = [ModelRegistry.open(settings) for _ in candidates]
    barrier = threading.Barrier(len(candidates))
    errors: list[BaseException] = []

    def promote(registry: ModelRegistry, version: str) -> None:
        try:
            barrier.wait(timeout=10)
            registry.promote(version, reason="race")
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=promote, args=pair)
        for pair in zip(registries, candidates, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for opened in registries:
        opened.close()

    assert errors == []
    with ModelRegistry.open(settings) as check:
        statuses = [v.status for v in check.list_versions()]
        assert statuses.count(ModelStatus.STABLE) == 1
        assert statuses.count(ModelStatus.RETIRED) == 2


@pytest.mark.parametrize("models", [(b"model-1", b"model-2"), (b"model-1", b"model-1")])
def test_concurrent_first_registrations_leave_exactly_one_stable(
    settings: Settings, models: tuple[bytes, bytes]
) -> None:
    registries = [ModelRegistry.open(settings) for _ in models]
    barrier = threading.Barrier(len(models))
    errors: list[BaseException] = []

    def run(registry: ModelRegistry, model: bytes) -> None:
        try:
            barrier.wait(timeout=10)
            register(registry, model)
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=pair) for pair in zip(registries, models, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for opened in registries:
        opened.close()

    assert errors == []
    with ModelRegistry.open(settings) as check:
        versions = check.list_versions()
        assert len(versions) == len(set(models))
        assert [v.status for v in versions].count(ModelStatus.STABLE) == 1
        for version in versions:
            assert check.artifact_bytes(version.version, "model.onnx") in models


def test_traffic_follows_the_canary_through_its_rollout(registry: ModelRegistry) -> None:
    stable = register(registry, b"model-1")
    candidate = register(registry, b"model-2")
    assert registry.traffic().stable == stable.version
    assert registry.traffic().canary is None

    split = registry.set_canary(candidate.version, weight=0.0, shadow=True, reason="shadow")
    assert (split.canary, split.canary_weight, split.shadow) == (candidate.version, 0.0, True)
    assert registry.get(candidate.version).status is ModelStatus.CANARY

    split = registry.set_canary(candidate.version, weight=0.25, shadow=False, reason="25%")
    assert (split.stable, split.canary, split.canary_weight, split.shadow) == (
        stable.version,
        candidate.version,
        0.25,
        False,
    )
    assert registry.traffic() == split

    registry.promote(candidate.version, reason="rollout passed")
    after = registry.traffic()
    assert (after.stable, after.canary, after.canary_weight, after.shadow) == (
        candidate.version,
        None,
        0.0,
        False,
    )


def test_a_rolled_back_canary_gets_no_more_traffic(registry: ModelRegistry) -> None:
    register(registry, b"model-1")
    candidate = register(registry, b"model-2")
    registry.set_canary(candidate.version, weight=0.5, shadow=False, reason="50%")

    registry.set_status(candidate.version, ModelStatus.ROLLED_BACK, "analysis failed")

    assert registry.traffic().canary is None
    assert registry.traffic().canary_weight == 0.0


def test_one_canary_at_a_time_and_never_the_stable_one(registry: ModelRegistry) -> None:
    stable = register(registry, b"model-1")
    first = register(registry, b"model-2")
    second = register(registry, b"model-3")
    registry.set_canary(first.version, weight=0.1, shadow=False, reason="10%")

    with pytest.raises(InvalidTransition, match="already the canary"):
        registry.set_canary(second.version, weight=0.1, shadow=False, reason="10%")
    with pytest.raises(InvalidTransition, match="stable version"):
        registry.set_canary(stable.version, weight=0.1, shadow=False, reason="10%")
    with pytest.raises(InvalidTransition, match="within"):
        registry.set_canary(first.version, weight=1.5, shadow=False, reason="150%")
    assert registry.traffic().canary_weight == 0.1


def test_a_cascade_version_id_covers_its_manifest() -> None:
    assert version_id(b"model-1", b"cascade-a") != version_id(b"model-1", b"cascade-b")
    assert version_id(b"model-1", b"cascade-a") != version_id(b"model-1")
    assert version_id(b"model-1", b"cascade-a") == version_id(b"model-1", b"cascade-a")
