"""The model the classifier serves, loaded from the registry and nowhere else.

The artifact's SHA-256 is verified on every load (``ModelRegistry.artifact_path``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from shared.ml.onnx_export import OnnxTagger
from shared.registry import ModelRegistry, ModelVersion

Role = Literal["stable", "canary"]


class Tagger(Protocol):
    """What serving needs of a model: its classes and batched probabilities."""

    @property
    def classes(self) -> list[str]: ...

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.floating[Any]]: ...


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A registered version ready to serve: its metadata and an inference session."""

    version: ModelVersion
    tagger: Tagger
    role: Role = "stable"

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


def load_version(registry: ModelRegistry, version: ModelVersion) -> LoadedModel:
    """Open ``version``'s verified ONNX artifact (blocking: call it off the event loop)."""
    tagger = OnnxTagger(registry.artifact_path(version.version, "model.onnx"))
    if tagger.classes != version.classes:
        raise ValueError(
            f"{version.version}: the ONNX model's classes {tagger.classes} differ from "
            f"the registered ones {version.classes}"
        )
    return LoadedModel(version=version, tagger=tagger)


def load_stable(registry: ModelRegistry, current: LoadedModel | None = None) -> LoadedModel | None:
    """The stable version, loaded; ``current`` again when it is still the stable one.

    None when no version is stable yet (nothing trained). Blocking: database and file I/O.
    """
    stable = registry.stable()
    if stable is None:
        return None
    if current is not None and current.name == stable.version:
        return current
    return load_version(registry, stable)
