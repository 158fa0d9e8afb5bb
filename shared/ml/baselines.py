"""Baselines every model is compared with on the same split: what "better" is measured from.

* **majority class**: always the most frequent training tag; it never decides alone (it
  has no notion of being sure), so it has no auto-accept figures.
* **keyword rules**: a few hand-written keywords per tag (``KEYWORDS``, written from what
  the tags mean, not fitted or tuned on any split). An item whose words match the
  keywords of exactly one tag gets that tag and is decided alone; one matching several
  tags gets the tag with the most matches and goes to review; one matching none gets the
  majority training tag and goes to review. It is the rule an engineer would write on
  day one, so a model that does not clearly beat it is not worth serving.

Keywords are phrases of prepared tokens (``shared.serving.text.prepare_text``:
lowercased words of two or more characters), matched on word boundaries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.ml.predictor import Prediction
from shared.serving.text import prepare_text

KEYWORDS: Mapping[str, tuple[str, ...]] = {
    "natural-language-processing": (
        "nlp",
        "natural language",
        "language model",
        "text",
        "bert",
        "gpt",
        "transformer",
        "sentiment",
        "translation",
        "summarization",
        "question answering",
        "chatbot",
        "tokenizer",
        "word embeddings",
    ),
    "computer-vision": (
        "computer vision",
        "image",
        "images",
        "vision",
        "video",
        "object detection",
        "segmentation",
        "yolo",
        "gan",
        "face",
        "pose estimation",
        "pixel",
        "camera",
    ),
    "mlops": (
        "mlops",
        "deployment",
        "deploy",
        "production",
        "monitoring",
        "serving",
        "kubernetes",
        "docker",
        "experiment tracking",
        "feature store",
        "ci cd",
        "pipeline",
    ),
    "other": (
        "reinforcement learning",
        "graph neural",
        "graph",
        "tabular",
        "time series",
        "recommender",
        "recommendation",
        "audio",
        "music",
    ),
}
"""Per tag, the phrases the keyword-rule baseline looks for (documented in docs/models.md)."""


def majority_tag(train_tags: Sequence[str]) -> str:
    """The most frequent tag; ties go to the alphabetically first, so it is reproducible."""
    if not train_tags:
        raise ValueError("no training tags to take the majority of")
    counts = Counter(train_tags)
    return min(counts, key=lambda tag: (-counts[tag], tag))


@dataclass(frozen=True, slots=True)
class MajorityBaseline:
    """Always the majority training tag, at its training share, never decided alone."""

    tag: str
    share: float
    name: str = "majority class"
    decides_alone: bool = False

    @classmethod
    def fit(cls, train_tags: Sequence[str]) -> MajorityBaseline:
        tag = majority_tag(train_tags)
        return cls(tag=tag, share=train_tags.count(tag) / len(train_tags))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return [Prediction(self.tag, self.share, decided=False) for _ in texts]


@dataclass(frozen=True, slots=True)
class KeywordBaseline:
    """Hand-written keyword rules (``KEYWORDS``); ``fallback`` when nothing matches."""

    fallback: str
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(KEYWORDS))
    name: str = "keyword rules"

    @classmethod
    def fit(cls, train_tags: Sequence[str]) -> KeywordBaseline:
        """Only the fallback comes from the data: the majority training tag."""
        return cls(fallback=majority_tag(train_tags))

    def matches(self, text: str) -> dict[str, int]:
        """How many of each tag's phrases occur in ``text`` (a prepared text)."""
        padded = f" {text} "
        counts = {
            tag: sum(f" {prepare_text(phrase)} " in padded for phrase in phrases)
            for tag, phrases in self.keywords.items()
        }
        return {tag: n for tag, n in counts.items() if n}

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        predictions = []
        for text in texts:
            found = self.matches(text)
            if not found:
                predictions.append(Prediction(self.fallback, 0.0, decided=False))
                continue
            total = sum(found.values())
            tag = min(found, key=lambda t: (-found[t], t))
            predictions.append(Prediction(tag, found[tag] / total, decided=len(found) == 1))
        return predictions
