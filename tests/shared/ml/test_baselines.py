"""The majority-class and keyword-rule baselines."""

from __future__ import annotations

import pytest

from shared.ml.baselines import KEYWORDS, KeywordBaseline, MajorityBaseline, majority_tag
from shared.ml.predictor import Prediction
from shared.serving.text import prepare_text
from shared.settings import DEFAULT_TAGS


def test_majority_tag_breaks_ties_alphabetically() -> None:
    assert majority_tag(["b", "a", "b", "a", "c"]) == "a"
    assert majority_tag(["mlops", "other", "other"]) == "other"
    with pytest.raises(ValueError, match="no training tags"):
        majority_tag([])


def test_majority_baseline_always_says_the_same_and_never_decides() -> None:
    baseline = MajorityBaseline.fit(["x", "y", "y", "y"])
    assert baseline.predict(["anything", "else"]) == [Prediction("y", 0.75, decided=False)] * 2
    assert baseline.decides_alone is False


def test_every_approved_tag_has_keywords() -> None:
    assert set(KEYWORDS) == set(DEFAULT_TAGS)
    assert all(phrases for phrases in KEYWORDS.values())


@pytest.mark.parametrize(
    ("title", "tag", "decided"),
    [
        ("Image segmentation with U-Net", "computer-vision", True),
        ("Deploying to Kubernetes", "mlops", True),
        # a phrase matches only as whole words: "texture" is not "text"
        ("Texture synthesis", "other", False),
        ("Graph neural networks", "other", True),
        # two tags' keywords: the one with more matches, sent to review
        ("Text to image generation with a GAN", "computer-vision", False),
        ("Nothing to see here", "other", False),
    ],
)
def test_keyword_rules(title: str, tag: str, decided: bool) -> None:
    baseline = KeywordBaseline(fallback="other")
    (prediction,) = baseline.predict([prepare_text(title)])
    assert (prediction.tag, prediction.decided) == (tag, decided)


def test_keyword_confidence_is_the_share_of_matches() -> None:
    baseline = KeywordBaseline(fallback="other")
    text = prepare_text("Text to image generation with a GAN")
    assert baseline.matches(text) == {"natural-language-processing": 1, "computer-vision": 2}
    (prediction,) = baseline.predict([text])
    assert prediction.confidence == pytest.approx(2 / 3)
    assert baseline.predict([prepare_text("nothing")])[0].confidence == 0.0


def test_keyword_fallback_is_the_majority_training_tag() -> None:
    assert KeywordBaseline.fit(["mlops", "mlops", "other"]).fallback == "mlops"


def test_the_models_guide_lists_every_keyword() -> None:
    from tests.fixtures.data import REPO

    guide = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    for tag, phrases in KEYWORDS.items():
        assert f"  - `{tag}`: {', '.join(phrases)}\n" in guide, tag
