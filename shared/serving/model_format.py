"""The contract between training and serving: artifact names and the ONNX graph's format.

(The ONNX artifact's name, ``MODEL_ARTIFACT``, is the registry's: ``shared.registry.models``.)

Training writes these (``shared.ml.onnx_graph``, ``shared.ml.training``); serving reads
them (``shared.serving.onnx_tagger``, the feedback service's drift score). They live on
the serving side so that reading a model never imports what built it.
"""

from __future__ import annotations

PIPELINE_ARTIFACT = "pipeline.joblib"
"""The registered scikit-learn reference pipeline (parity, ``--engine sklearn``, drift)."""
VOCABULARY_ARTIFACT = "vocabulary.json"
"""The unigrams the model's vectorizer knows, sorted: what the drift score compares with."""
VECTORIZER_STEP = "tfidf"
"""The name of the pipeline's TF-IDF step."""
CLASSIFIER_STEP = "classifier"
"""The name of the pipeline's classifier step."""

INPUT_NAME = "text"
OUTPUT_NAME = "probabilities"
GRAPH_FORMAT = "tagstream-tfidf-logreg/1"
META_FORMAT = "tagstream.format"
META_CLASSES = "tagstream.classes"
META_VOCABULARY_SIZE = "tagstream.vocabulary_size"
META_INPUT = "tagstream.input"
