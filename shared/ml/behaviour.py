"""Behavioural tests of a model, in the style of Made With ML (after Ribeiro et al.'s CheckList).

Three kinds of case, each a short post title a person would tag without hesitation:

* **invariance**: a change that must not move the tag (casing, a typo in a word that
  carries no topic, irrelevant words added): the variant gets the original's tag;
* **directional**: adding a clear computer-vision, NLP or MLOps phrase to a neutral title
  moves the tag to that one;
* **minimum functionality**: short unambiguous titles get their obvious tag.

They run on every trained model (the report lists each case, failures first) and as a
pytest module over a trained model (``tests/shared/ml/test_behaviour_model.py``). A failed
case is a finding to read, not a reason to refuse a version: registration is decided by
the offline gate, and a handful of titles is too few to block on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.ml.predictor import Predictor, tags_of
from shared.serving.text import prepare_text

Kind = Literal["invariance", "directional", "minimum_functionality"]
KINDS: tuple[Kind, ...] = ("invariance", "directional", "minimum_functionality")

NLP, CV, MLOPS, OTHER = "natural-language-processing", "computer-vision", "mlops", "other"


@dataclass(frozen=True, slots=True)
class BehaviourCase:
    """``title`` alone (minimum functionality) or with its ``variant``.

    Invariance: the variant's tag must equal the title's. Directional and minimum
    functionality: the variant's (directional) or the title's tag must be ``expected``.
    """

    kind: Kind
    name: str
    title: str
    variant: str | None = None
    expected: str | None = None


_BASE = "A new open-source library for machine learning"

CASES: tuple[BehaviourCase, ...] = (
    # invariance: casing
    BehaviourCase(
        "invariance",
        "upper case",
        "Object detection in real time with YOLO",
        "OBJECT DETECTION IN REAL TIME WITH YOLO",
    ),
    BehaviourCase(
        "invariance",
        "title case",
        "fine-tuning bert for question answering",
        "Fine-Tuning BERT For Question Answering",
    ),
    # invariance: typos in words that carry no topic
    BehaviourCase(
        "invariance",
        "typos",
        "A survey of image segmentation methods for self-driving cars",
        "A suvrey of image segmentation methods for slef-driving cars",
    ),
    BehaviourCase(
        "invariance",
        "typos",
        "Serving machine learning models with a simple REST API",
        "Serving machine lerning models with a simpel REST API",
    ),
    # invariance: irrelevant words
    BehaviourCase(
        "invariance",
        "irrelevant words",
        "Sentiment analysis of movie reviews with transformers",
        "Sentiment analysis of movie reviews with transformers, a weekend project I loved",
    ),
    BehaviourCase(
        "invariance",
        "irrelevant words",
        "Monitoring data drift of deployed models",
        "Monitoring data drift of deployed models (blog post, 2020)",
    ),
    # directional: a clear phrase moves a neutral title to its tag
    BehaviourCase("directional", "adds a CV phrase", _BASE, f"{_BASE} for image segmentation", CV),
    BehaviourCase(
        "directional",
        "adds an NLP phrase",
        _BASE,
        f"{_BASE} for text classification and named entity recognition",
        NLP,
    ),
    BehaviourCase(
        "directional",
        "adds an MLOps phrase",
        _BASE,
        f"{_BASE} to deploy, serve and monitor models in production",
        MLOPS,
    ),
    BehaviourCase(
        "directional",
        "CV phrase overrides NLP words",
        "Transformers for text and images",
        "Transformers for text and images: object detection and image segmentation",
        CV,
    ),
    # minimum functionality: short unambiguous titles
    BehaviourCase(
        "minimum_functionality", "CV", "Image classification with convolutional networks", None, CV
    ),
    BehaviourCase("minimum_functionality", "CV", "Face recognition from webcam video", None, CV),
    BehaviourCase(
        "minimum_functionality",
        "NLP",
        "Machine translation with sequence to sequence models",
        None,
        NLP,
    ),
    BehaviourCase("minimum_functionality", "NLP", "Text summarization with GPT-2", None, NLP),
    BehaviourCase(
        "minimum_functionality",
        "MLOps",
        "Deploying models to production with Kubernetes",
        None,
        MLOPS,
    ),
    BehaviourCase(
        "minimum_functionality", "MLOps", "Experiment tracking and model registry", None, MLOPS
    ),
    BehaviourCase(
        "minimum_functionality",
        "other",
        "Reinforcement learning agent plays Atari games",
        None,
        OTHER,
    ),
    BehaviourCase(
        "minimum_functionality",
        "other",
        "Graph neural networks for recommender systems",
        None,
        OTHER,
    ),
)
"""The cases every trained model is checked on (written from what the tags mean)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class CaseResult(_Frozen):
    kind: Kind
    name: str
    title: str
    variant: str | None
    expected: str | None
    """The tag asked for; for invariance, the title's own predicted tag."""
    predicted: str
    """The tag of the input judged: the variant when there is one, else the title."""
    passed: bool


class BehaviourReport(_Frozen):
    model: str
    results: list[CaseResult]

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def n_passed(self) -> int:
        return sum(r.passed for r in self.results)

    def counts(self) -> dict[str, tuple[int, int]]:
        """Per kind: (passed, cases)."""
        return {
            kind: (
                sum(r.passed for r in self.results if r.kind == kind),
                sum(r.kind == kind for r in self.results),
            )
            for kind in KINDS
        }


def run_behaviour(predictor: Predictor, cases: Sequence[BehaviourCase] = CASES) -> BehaviourReport:
    """Every case on ``predictor``, in one batch; failures are results, never exceptions."""
    titles = [prepare_text(case.title) for case in cases]
    variants = [prepare_text(case.variant or case.title) for case in cases]
    predicted = tags_of(predictor, [*titles, *variants])
    original, changed = predicted[: len(cases)], predicted[len(cases) :]
    results = [
        case_result(case, tag, variant_tag)
        for case, tag, variant_tag in zip(cases, original, changed, strict=True)
    ]
    return BehaviourReport(model=predictor.name, results=results)


def case_result(case: BehaviourCase, tag: str, variant_tag: str) -> CaseResult:
    """Judge one case from the tags predicted for its title and its variant."""
    expected: str | None
    if case.kind == "invariance":
        expected, predicted = tag, variant_tag
    elif case.kind == "directional":
        expected, predicted = case.expected, variant_tag
    else:
        expected, predicted = case.expected, tag
    return CaseResult(
        kind=case.kind,
        name=case.name,
        title=case.title,
        variant=case.variant,
        expected=expected,
        predicted=predicted,
        passed=predicted == expected,
    )
