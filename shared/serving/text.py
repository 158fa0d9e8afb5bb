"""The one text-preparation step used by training and serving alike (no skew).

``prepare_text`` does all of the tokenisation: it returns the model's word tokens,
lowercased and joined by single spaces. The model then only has to split on ``" "``
(``TOKEN_PATTERN`` in scikit-learn, ``StringSplit`` in the ONNX graph), and both engines
see exactly the same tokens for every input. Tokenising twice, once with scikit-learn's
regex and once with the ONNX tokenizer's, is what made a naive export disagree.

Lowercasing happens here, before the ONNX graph, so the exported model needs no
``StringNormalizer`` (which fails without an installed ``en_US.UTF-8`` locale).
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Invisible format characters that change how text is shown, not what it says: bidi
# embeddings, overrides, isolates and marks (a title could display reversed, "Trojan
# Source" style), the zero-width space, word joiner and byte-order mark. Removed, not
# made spaces: they sit inside words. Joiners (U+200C, U+200D) stay: scripts need them.
_INVISIBLE = re.compile("[\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
_SPACE = re.compile(r"\s+")
# scikit-learn's default word pattern: runs of two or more word characters.
_WORD = re.compile(r"\b\w\w+\b")

TOKEN_SEPARATOR = " "  # a separator, not a password  # nosec B105
"""What ``prepare_text`` puts between tokens, and the only separator the model splits on."""

TOKEN_PATTERN = r"[^ ]+"  # a regular expression, not a password  # nosec B105
"""The vectorizer's token pattern: maximal runs of non-space characters.

It yields the same tokens as ONNX ``StringSplit`` without a delimiter (which splits on
runs of spaces and nothing else) for any string, prepared or not.
"""


def normalise(value: str) -> str:
    """NFKC-normalise, drop control and bidi characters and collapse white space."""
    value = unicodedata.normalize("NFKC", value)
    value = _INVISIBLE.sub("", value)
    value = _CONTROL.sub(" ", value)
    return _SPACE.sub(" ", value).strip()


def prepare_text(title: str, description: str | None = None) -> str:
    """The model's input for an item: its lowercased word tokens joined by single spaces.

    Title and description are normalised and lowercased; punctuation and one-character
    words are dropped, the same as scikit-learn's default tokenizer would do.
    """
    text = normalise(f"{title} {description or ''}").lower()
    return TOKEN_SEPARATOR.join(_WORD.findall(text))
