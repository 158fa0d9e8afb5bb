"""The one text-preparation step used by training and serving alike (no skew).

``prepare_text`` does all of the tokenisation: it returns the model's word tokens,
lowercased and joined by single spaces. The model then only has to split on ``" "``
(``TOKEN_PATTERN`` in scikit-learn, ``StringSplit`` in the ONNX graph), and both engines
see exactly the same tokens for every input. Tokenising twice, once with scikit-learn's
regex and once with the ONNX tokenizer's, is what made a naive export disagree.

Lowercasing happens here, before the ONNX graph, so the exported model needs no
``StringNormalizer`` (which fails without an installed ``en_US.UTF-8`` locale).

The title's words are emitted ``TITLE_REPEATS`` times, so a title word counts double in
the TF-IDF features: the title is the densest statement of what an item is about.
Stratified 5-fold cross-validation repeated 10 times on the train+validation part of the
project's split (seed 42) measured the out-of-fold share of items that can be
auto-accepted at 97% precision: 0.709 -> 0.743 (higher in every repeat), weighted F1
0.871 either way. Repeating tokens needs no change in the graph, which only splits on
spaces. A model trained on one
text version must be served with the same one: ``TEXT_VERSION`` names it and is written
into the exported model's metadata and the training parameters.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s+")
# scikit-learn's default word pattern: runs of two or more word characters.
_WORD = re.compile(r"\b\w\w+\b")

TITLE_REPEATS = 2
"""How many times ``prepare_text`` emits each title word (description words once)."""

TEXT_VERSION = "words-title2/2"
"""Names what ``prepare_text`` produces; change it whenever its output changes.

Version 1 (unnamed in older models) was every word once, title and description alike.
"""

TOKEN_SEPARATOR = " "
"""What ``prepare_text`` puts between tokens, and the only separator the model splits on."""

TOKEN_PATTERN = r"[^ ]+"
"""The vectorizer's token pattern: maximal runs of non-space characters.

It yields the same tokens as ONNX ``StringSplit`` without a delimiter (which splits on
runs of spaces and nothing else) for any string, prepared or not.
"""


def normalise(value: str) -> str:
    """NFKC-normalise, drop control characters and collapse white space."""
    value = unicodedata.normalize("NFKC", value)
    value = _CONTROL.sub(" ", value)
    return _SPACE.sub(" ", value).strip()


def words(text: str | None) -> list[str]:
    """Lowercased word tokens of ``text``: what scikit-learn's default tokenizer finds.

    The text is normalised and lowercased; punctuation and one-character words are dropped.
    """
    return _WORD.findall(normalise(text or "").lower())


def prepare_text(title: str, description: str | None = None) -> str:
    """The model's input for an item: its word tokens joined by single spaces.

    The title's words come first, ``TITLE_REPEATS`` times over, then the description's
    words once. Prepared text fed back in as a description comes out unchanged.
    """
    title_words = words(title)
    return TOKEN_SEPARATOR.join([*title_words * TITLE_REPEATS, *words(description)])


def plain_text(title: str, description: str | None = None) -> str:
    """The item's words once each, title then description, for measuring (not the model)."""
    return TOKEN_SEPARATOR.join([*words(title), *words(description)])
