"""register_candidate: every trained model is registered, every new candidate announced."""

from __future__ import annotations

from collections.abc import Callable

from shared.ml.candidates import NewVersion, Parent, register_candidate
from shared.registry import ModelStatus, ModelVersion
from shared.settings import Settings


def new_version(model: bytes, parents: list[str | None]) -> Callable[[Parent | None], NewVersion]:
    """What training would register, recording which stable version it was shown."""

    def prepare(stable: Parent | None) -> NewVersion:
        parents.append(stable.version if stable else None)
        return NewVersion(
            artifacts={"model.onnx": model},
            data_hash="d",
            params={},
            metrics={},
            thresholds={"a": 0.5},
            classes=["a", "b"],
            model_card=f"parent {stable.version if stable else 'none'}",
        )

    return prepare


def test_the_first_version_is_stable_and_later_ones_are_announced_candidates(
    settings: Settings,
) -> None:
    announced: list[str] = []
    parents: list[str | None] = []

    def announce(_: Settings, version: ModelVersion) -> bool:
        announced.append(version.version)
        return True

    first = register_candidate(settings, new_version(b"one", parents), announce=announce)
    assert (first.version.status, first.announced) == (ModelStatus.STABLE, None)
    assert announced == []

    second = register_candidate(settings, new_version(b"two", parents), announce=announce)
    assert (second.version.status, second.announced) == (ModelStatus.CANDIDATE, True)
    assert second.version.parent_version == first.version.version
    assert second.version.model_card == f"parent {first.version.version}"
    assert announced == [second.version.version]
    assert parents == [None, first.version.version]


def test_an_unacknowledged_announcement_still_registers(settings: Settings) -> None:
    register_candidate(settings, new_version(b"one", []), announce=lambda *_: True)
    registered = register_candidate(settings, new_version(b"two", []), announce=lambda *_: False)
    assert registered.announced is False
    assert registered.version.status == ModelStatus.CANDIDATE
