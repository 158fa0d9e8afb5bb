"""The one text-preparation step used by training and serving alike (no skew).

Lowercasing happens here, before the ONNX graph, so the exported model needs no
``StringNormalizer`` (which fails without an installed ``en_US.UTF-8`` locale).
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s+")


def normalise(value: str) -> str:
    """NFKC-normalise, drop control characters and collapse white space."""
    value = unicodedata.normalize("NFKC", value)
    value = _CONTROL.sub(" ", value)
    return _SPACE.sub(" ", value).strip()


def prepare_text(title: str, description: str | None = None) -> str:
    """The model's input for an item: title and description, normalised and lowercased."""
    text = normalise(f"{title} {description or ''}")
    return text.lower()
