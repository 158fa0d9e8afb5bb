"""Where every training run ends: register the model, and announce it if it is a candidate.

The CLI (``tagstream model train``) and the feedback service's retraining both train
through ``shared.ml.training.train``, whose last step is ``register_candidate``; there is
no other way a trained model reaches the registry, so no candidate goes unannounced,
and none goes ungated: ``prepare`` receives the stable version with its verified ONNX
bytes, so training runs the offline gate (``shared.ml.gate``) against it and the verdict is
registered with the version, before the announcement tells anyone it exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.kafka.events import announce_candidate
from shared.ml.gate import FITTED_ARTIFACT, read_fitted_texts
from shared.registry import ModelRegistry, ModelVersion
from shared.registry.models import MODEL_ARTIFACT, ModelStatus
from shared.settings import Settings

Announce = Callable[[Settings, ModelVersion], bool]


@dataclass(frozen=True, slots=True)
class NewVersion:
    """What the registry records of a trained model (see ``ModelRegistry.register``)."""

    artifacts: dict[str, bytes]
    data_hash: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    thresholds: dict[str, float]
    classes: list[str]
    model_card: str
    gate: dict[str, Any] | None = None
    """The offline gate's verdict and figures (``shared.ml.gate``)."""


@dataclass(frozen=True, slots=True)
class Parent:
    """The stable version at the time of registering, and its model, checked by sha256."""

    model: ModelVersion
    onnx: bytes
    fitted: frozenset[str] | None = None
    """Digests of the texts it fitted on (``shared.ml.gate.FITTED_ARTIFACT``); None for a
    version registered before they were recorded."""

    @property
    def version(self) -> str:
        return self.model.version


@dataclass(frozen=True, slots=True)
class Registered:
    """The registered version, and whether ``models.events`` acknowledged its announcement.

    ``announced`` is None when there was nothing to announce: the first version of a model
    becomes stable, and a model registered before keeps the status it has reached.
    """

    version: ModelVersion
    announced: bool | None


def register_candidate(
    settings: Settings,
    prepare: Callable[[Parent | None], NewVersion],
    *,
    announce: Announce = announce_candidate,
) -> Registered:
    """Register what ``prepare`` builds and announce the version when it is a new candidate.

    ``prepare`` receives the stable version at the time of registering (None before the
    first one): the new version's parent, which its report and model card name and the
    offline gate compares with. The
    announcement is best effort (the registry is the truth, classifiers also poll it), so
    an unreachable broker never fails a run. Blocking: call it off the event loop.
    """
    with ModelRegistry.open(settings) as registry:
        stable = registry.stable()
        parent = (
            Parent(
                stable,
                registry.artifact_bytes(stable.version, MODEL_ARTIFACT),
                _fitted(registry, stable),
            )
            if stable is not None
            else None
        )
        new = prepare(parent)
        version = registry.register(
            artifacts=new.artifacts,
            data_hash=new.data_hash,
            params=new.params,
            metrics=new.metrics,
            thresholds=new.thresholds,
            classes=new.classes,
            model_card=new.model_card,
            gate=new.gate,
            parent_version=stable.version if stable else None,
        )
    if version.status != ModelStatus.CANDIDATE:
        return Registered(version, announced=None)
    return Registered(version, announced=announce(settings, version))


def _fitted(registry: ModelRegistry, version: ModelVersion) -> frozenset[str] | None:
    if FITTED_ARTIFACT not in version.artifacts:
        return None
    return read_fitted_texts(registry.artifact_bytes(version.version, FITTED_ARTIFACT))
