"""prepare_text: the tokenisation contract shared by scikit-learn and the ONNX graph."""

from __future__ import annotations

import re

import pytest
from sklearn.feature_extraction.text import CountVectorizer

from shared.serving.text import TOKEN_PATTERN, TOKEN_SEPARATOR, normalise, prepare_text

WEIRD = [
    ("", None),
    ("   ", "\t\n"),
    ("!!!", "???"),
    ("a", "b c"),
    ("Café ÉTÉ", "ﬁne-tuning GPT-3 (v2.0) & more"),
    ("日本語 テキスト", "Ünïcödé wörds"),
    ("emoji 🙂🙂 rocket🚀launch", None),
    ("digits 123 4567 3.14", "x2 2x"),
    ("null\x00byte", "bell\x07 and \x85nel"),
    ("under_score snake_case", "CamelCase"),
    ("İstanbul ǅungla ΣΊΣΥΦΟΣ", "straße ﬀ"),
    ("word " * 500, "long " * 1000),
]


def _sklearn_default_tokens(title: str, description: str | None) -> list[str]:
    """What scikit-learn's default analyzer makes of the normalised text."""
    analyzer = CountVectorizer().build_analyzer()
    return list(analyzer(normalise(f"{title} {description or ''}")))


def test_lowercases_and_joins_title_and_description() -> None:
    assert prepare_text("Hello World", "Second PART") == "hello world second part"
    assert prepare_text("Title only") == "title only"
    assert prepare_text("Title only", None) == prepare_text("Title only", "")


@pytest.mark.parametrize(("title", "description"), WEIRD)
def test_tokens_are_scikit_learns_default_words(title: str, description: str | None) -> None:
    """Same words as the default TfidfVectorizer, so tokenising here costs no accuracy."""
    prepared = prepare_text(title, description)
    assert (prepared.split(TOKEN_SEPARATOR) if prepared else []) == _sklearn_default_tokens(
        title, description
    )


@pytest.mark.parametrize(("title", "description"), WEIRD)
def test_output_is_single_space_separated_tokens(title: str, description: str | None) -> None:
    prepared = prepare_text(title, description)
    assert prepared == prepared.strip()
    assert "  " not in prepared
    assert not re.search(r"[^\S ]", prepared)  # no other white space
    assert prepared == prepared.lower()
    assert re.findall(TOKEN_PATTERN, prepared) == [t for t in prepared.split(" ") if t]


@pytest.mark.parametrize(("title", "description"), WEIRD)
def test_is_idempotent(title: str, description: str | None) -> None:
    once = prepare_text(title, description)
    assert prepare_text(once) == once


def test_drops_punctuation_single_characters_and_control_characters() -> None:
    assert prepare_text("A/B testing: a how-to!", "x = 1") == "testing how to"
    assert prepare_text("tab\there", "nul\x00here") == "tab here nul here"
    assert prepare_text("!!!", "?") == ""


def test_normalises_compatibility_characters() -> None:
    assert prepare_text("ﬁne ＧＰＵ", None) == "fine gpu"


def test_normalise_collapses_white_space_and_strips() -> None:
    assert normalise("  a\t\tb\n c \x00 d  ") == "a b c d"
    assert normalise("Keep Case") == "Keep Case"
