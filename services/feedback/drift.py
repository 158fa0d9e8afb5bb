"""Text drift: how much of what arrives now the stable model has never seen.

The score is the out-of-vocabulary share of the recent items' tokens (after the shared
``prepare_text``) against the unigram vocabulary of the stable model's TF-IDF step, read
from its registered ``vocabulary.json``. The model's own training data scores low but not
zero (``min_df`` and ``max_features`` leave rare words out), so the threshold is a setting.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable

from shared.registry import ModelRegistry, ModelVersion
from shared.serving.model_format import PIPELINE_ARTIFACT, VECTORIZER_STEP, VOCABULARY_ARTIFACT
from shared.serving.text import TOKEN_SEPARATOR, prepare_text


def vocabulary_of(registry: ModelRegistry, version: ModelVersion) -> frozenset[str]:
    """Unigrams the version's vectorizer knows (n-grams are made of these)."""
    # The artifacts are the registry's own, verified against their sha256 before reading.
    if VOCABULARY_ARTIFACT in version.artifacts:
        terms = json.loads(registry.artifact_bytes(version.version, VOCABULARY_ARTIFACT))
        return frozenset(str(term) for term in terms)
    return _vocabulary_from_pipeline(registry, version)


def _vocabulary_from_pipeline(registry: ModelRegistry, version: ModelVersion) -> frozenset[str]:
    """For versions registered before ``vocabulary.json`` existed: unpickle the pipeline.

    This loads scikit-learn into the service, hence the import here and only here.
    """
    import joblib

    pipeline = joblib.load(io.BytesIO(registry.artifact_bytes(version.version, PIPELINE_ARTIFACT)))
    vocabulary = pipeline.named_steps[VECTORIZER_STEP].vocabulary_
    return frozenset(term for term in vocabulary if TOKEN_SEPARATOR not in term)


def oov_share(texts: Iterable[tuple[str, str]], vocabulary: frozenset[str]) -> float | None:
    """Share of tokens not in ``vocabulary``; None when there are no tokens at all."""
    total = unknown = 0
    for title, description in texts:
        tokens = prepare_text(title, description).split(TOKEN_SEPARATOR)
        tokens = [t for t in tokens if t]
        total += len(tokens)
        unknown += sum(1 for t in tokens if t not in vocabulary)
    return unknown / total if total else None


class VocabularyCache:
    """The stable model's vocabulary, reloaded only when the stable version changes."""

    def __init__(self) -> None:
        self._version: str | None = None
        self._vocabulary: frozenset[str] = frozenset()

    def get(self, registry: ModelRegistry) -> frozenset[str] | None:
        stable = registry.stable()
        if stable is None:
            return None
        if stable.version != self._version:
            self._vocabulary = vocabulary_of(registry, stable)
            self._version = stable.version
        return self._vocabulary
