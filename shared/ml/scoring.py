"""The scikit-learn reference engine behind ``tagstream model predict --engine sklearn``.

Serving scores with ONNX (``shared.serving.scoring``); this engine loads the registered
reference pipeline with joblib, which is why it lives with training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import joblib
import numpy as np
import numpy.typing as npt

from shared.registry import ModelRegistry, ModelVersion
from shared.serving.model_format import PIPELINE_ARTIFACT
from shared.serving.onnx_tagger import Tagger
from shared.serving.scoring import load_onnx_tagger

Engine = Literal["onnx", "sklearn"]


@dataclass(frozen=True, slots=True)
class SklearnTagger:
    """The scikit-learn reference pipeline behind the same interface as ``OnnxTagger``."""

    pipeline: Any

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.pipeline.classes_]

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.floating[Any]]:
        if not texts:
            return np.zeros((0, len(self.classes)))
        return np.asarray(self.pipeline.predict_proba(list(texts)))


def load_tagger(registry: ModelRegistry, version: ModelVersion, engine: Engine = "onnx") -> Tagger:
    if engine == "onnx":
        return load_onnx_tagger(registry, version)
    return SklearnTagger(joblib.load(registry.artifact_path(version.version, PIPELINE_ARTIFACT)))
