"""The model the classifier serves, loaded from the registry and nowhere else.

The artifact's SHA-256 is verified on every load (``ModelRegistry.artifact_path``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.registry import ModelRegistry, ModelVersion, TrafficSplit
from shared.serving.cascade import Stage2, has_cascade, load_stage2
from shared.serving.onnx_tagger import Tagger
from shared.serving.scoring import load_onnx_tagger

Role = Literal["stable", "canary"]


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A registered version ready to serve: its metadata and an inference session."""

    version: ModelVersion
    tagger: Tagger
    role: Role = "stable"
    stage2: Stage2 | None = None
    """The cascade's second stage, when the version has one and the cascade is enabled."""

    @property
    def name(self) -> str:
        """The version id, e.g. ``v1a2b3c4d5e6f``: what metrics and messages carry."""
        return self.version.version

    @property
    def classes(self) -> list[str]:
        return self.tagger.classes

    @property
    def thresholds(self) -> dict[str, float]:
        return self.version.thresholds


@dataclass(frozen=True, slots=True)
class CascadeOptions:
    """``TAGSTREAM_CASCADE_ENABLED`` and the stage-2 session's threads."""

    enabled: bool = True
    threads: int = 1


def load_version(
    registry: ModelRegistry,
    version: ModelVersion,
    role: Role = "stable",
    cascade: CascadeOptions | None = None,
) -> LoadedModel:
    """Open ``version``'s verified ONNX artifacts (blocking: call it off the event loop).

    The cascade's second stage is loaded with it, one version, unless switched off.
    """
    cascade = cascade or CascadeOptions()
    tagger = load_onnx_tagger(registry, version)
    if tagger.classes != version.classes:
        raise ValueError(
            f"{version.version}: the ONNX model's classes {tagger.classes} differ from "
            f"the registered ones {version.classes}"
        )
    stage2 = (
        load_stage2(registry, version, threads=cascade.threads)
        if cascade.enabled and has_cascade(version)
        else None
    )
    return LoadedModel(version=version, tagger=tagger, role=role, stage2=stage2)


@dataclass(frozen=True, slots=True)
class ServingSet:
    """The models one batch is decided by: the stable one and at most one canary.

    The consumer takes one snapshot per batch, so a batch is decided wholly by the models
    that were active when it started, however the split changes meanwhile.
    """

    stable: LoadedModel
    canary: LoadedModel | None = None
    canary_weight: float = 0.0
    shadow: bool = False

    @property
    def models(self) -> tuple[LoadedModel, ...]:
        return (self.stable,) if self.canary is None else (self.stable, self.canary)

    def describe(self) -> dict[str, object]:
        """For logs: which versions serve and how."""
        return {
            "stable_version": self.stable.name,
            "canary_version": self.canary.name if self.canary else None,
            "canary_weight": self.canary_weight,
            "shadow": self.shadow,
        }


def load_serving(
    registry: ModelRegistry,
    current: ServingSet | None = None,
    cascade: CascadeOptions | None = None,
) -> ServingSet | None:
    """The registry's traffic split with its models loaded; ``current`` when unchanged.

    Models already loaded are reused, so a weight change costs one database read. None
    while no version is stable. Blocking: database and file I/O.
    """
    split: TrafficSplit = registry.traffic()
    if split.stable is None:
        return None
    loaded = {m.name: m for m in current.models} if current is not None else {}

    def model(version: str, role: Role) -> LoadedModel:
        known = loaded.get(version)
        if known is not None and known.role == role:
            return known
        if known is not None:  # a promoted canary keeps its session, with its new role
            return LoadedModel(
                version=known.version, tagger=known.tagger, role=role, stage2=known.stage2
            )
        return load_version(registry, registry.get(version), role, cascade)

    serving = ServingSet(
        stable=model(split.stable, "stable"),
        canary=model(split.canary, "canary") if split.canary is not None else None,
        canary_weight=split.canary_weight if split.canary is not None else 0.0,
        shadow=split.shadow and split.canary is not None,
    )
    if current is not None and _same(serving, current):
        return current
    return serving


def _same(a: ServingSet, b: ServingSet) -> bool:
    return (
        a.stable is b.stable
        and a.canary is b.canary
        and a.canary_weight == b.canary_weight
        and a.shadow == b.shadow
    )
