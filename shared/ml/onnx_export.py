"""Export a fitted pipeline to ONNX, serve it, and gate it on parity with scikit-learn.

``export_onnx`` reads the fitted parameters and hands them to ``onnx_graph``, which builds
the graph by hand (see its docstring for why not skl2onnx). The graph reproduces only
the configurations ``build_pipeline`` makes; anything else is refused here rather than
exported subtly wrong. ``OnnxTagger`` (``shared.serving.onnx_tagger``) serves the bytes, and
``assert_parity`` (``onnx_parity``) proves they agree with the pipeline.
"""

from __future__ import annotations

import numpy as np
import onnx
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from shared.ml.onnx_graph import LinearTfidfModel, build_tagger_graph
from shared.ml.onnx_parity import (
    DEFAULT_PARITY_TOLERANCE,
    ParityError,
    ParityReport,
    assert_parity,
    check_parity,
)
from shared.serving.text import TOKEN_PATTERN

__all__ = [
    "DEFAULT_PARITY_TOLERANCE",
    "ParityError",
    "ParityReport",
    "assert_parity",
    "check_parity",
    "export_onnx",
]

# Vectorizer settings the graph reproduces; any other value is refused.
_REQUIRED_VECTORIZER = {
    "input": "content",
    "analyzer": "word",
    "lowercase": False,
    "token_pattern": TOKEN_PATTERN,
    "tokenizer": None,
    "preprocessor": None,
    "stop_words": None,
    "strip_accents": None,
    "binary": False,
    "norm": "l2",
    "sublinear_tf": False,
}


def export_onnx(pipeline: Pipeline) -> bytes:
    """Serialise a fitted ``build_pipeline`` pipeline to ONNX; same pipeline, same bytes."""
    vectorizer, classifier = _fitted_steps(pipeline)
    terms = sorted(vectorizer.vocabulary_.items(), key=lambda item: item[1])
    if [index for _, index in terms] != list(range(len(terms))):
        raise ValueError("the vectorizer's vocabulary indices are not 0..n-1")
    n_terms = len(terms)
    idf = vectorizer.idf_ if vectorizer.use_idf else np.ones(n_terms)
    model = build_tagger_graph(
        LinearTfidfModel(
            vocabulary=[term for term, _ in terms],
            idf=np.asarray(idf, dtype=np.float64),
            coef=np.asarray(classifier.coef_, dtype=np.float64),
            intercept=np.asarray(classifier.intercept_, dtype=np.float64),
            classes=[str(c) for c in classifier.classes_],
            ngram_range=tuple(vectorizer.ngram_range),
        )
    )
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def _fitted_steps(pipeline: Pipeline) -> tuple[TfidfVectorizer, LogisticRegression]:
    steps = [step for _, step in pipeline.steps]
    if len(steps) != 2:
        raise ValueError(
            f"expected a TF-IDF + logistic regression pipeline, got {len(steps)} steps"
        )
    vectorizer, classifier = steps
    if not isinstance(vectorizer, TfidfVectorizer) or not isinstance(
        classifier, LogisticRegression
    ):
        raise ValueError(
            f"expected TfidfVectorizer + LogisticRegression, got "
            f"{type(vectorizer).__name__} + {type(classifier).__name__}"
        )
    if not hasattr(vectorizer, "vocabulary_") or not hasattr(classifier, "coef_"):
        raise ValueError("the pipeline is not fitted")
    params = vectorizer.get_params()
    unsupported = {
        name: params[name] for name, value in _REQUIRED_VECTORIZER.items() if params[name] != value
    }
    if unsupported:
        raise ValueError(f"vectorizer settings the ONNX graph does not reproduce: {unsupported}")
    return vectorizer, classifier
