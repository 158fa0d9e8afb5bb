"""The scikit-learn model: TF-IDF word features and a logistic regression.

The pipeline reads texts from ``shared.serving.text.prepare_text``, which has already lowercased
and tokenised them, so the vectorizer only splits on spaces (``lowercase=False``,
``TOKEN_PATTERN``). ``shared.ml.onnx_export`` rebuilds exactly this computation as an ONNX
graph; it refuses pipelines configured in ways the graph does not reproduce.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from shared.ml.config import ModelConfig
from shared.serving.model_format import CLASSIFIER_STEP, VECTORIZER_STEP
from shared.serving.text import TOKEN_PATTERN


def build_pipeline(config: ModelConfig, seed: int) -> Pipeline:
    """An unfitted pipeline; fit it on prepared texts and their tags.

    ``sublinear_tf`` stays off: the ONNX graph reproduces raw term counts exactly, and
    scikit-learn's sublinear variant is a known source of export disagreement.
    """
    vectorizer = TfidfVectorizer(
        lowercase=False,
        token_pattern=TOKEN_PATTERN,
        ngram_range=(1, config.ngram_max),
        min_df=config.min_df,
        max_features=config.max_features,
        norm="l2",
        use_idf=True,
        smooth_idf=True,
        sublinear_tf=False,
        dtype=np.float64,
    )
    classifier = LogisticRegression(
        C=config.c,
        class_weight=config.class_weight,
        max_iter=config.max_iter,
        random_state=seed,
    )
    return Pipeline([(VECTORIZER_STEP, vectorizer), (CLASSIFIER_STEP, classifier)])
