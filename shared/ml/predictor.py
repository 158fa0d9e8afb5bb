"""What evaluation calls a model: anything that maps texts to (tag, confidence, decided?).

Baselines, the can-it-overfit check, the behavioural tests and ``tagstream model evaluate``
all score a :class:`Predictor`, never a tagger directly, so that every kind of model is
judged by the same code: today's stage-1 tagger with its calibrated thresholds
(:class:`ThresholdPredictor`), the rule and majority baselines (``shared.ml.baselines``),
and a cascade, which only has to implement ``predict``.

Texts are the model's input, ``shared.serving.text.prepare_text(title, description)``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.serving.onnx_tagger import Tagger
from shared.serving.routing import route_decisions


@dataclass(frozen=True, slots=True)
class Prediction:
    """One item's verdict: the tag, how sure, and whether the model decides it alone."""

    tag: str
    confidence: float
    decided: bool
    """True: auto-accepted; False: the item would go to human review."""


class Predictor(Protocol):
    """A model as evaluation sees it."""

    @property
    def name(self) -> str: ...

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...


@dataclass(frozen=True, slots=True)
class ThresholdPredictor:
    """A tagger and its calibrated thresholds, routed by the rule serving uses."""

    tagger: Tagger
    thresholds: Mapping[str, float]
    approved_tags: Collection[str]
    name: str = "model"

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        proba = self.tagger.predict_proba(list(texts))
        decisions = route_decisions(proba, self.tagger.classes, self.thresholds, self.approved_tags)
        return [Prediction(d.tag, d.confidence, d.route == "auto") for d in decisions]


def tags_of(predictor: Predictor, texts: Sequence[str]) -> list[str]:
    return [p.tag for p in predictor.predict(texts)]
