"""Export a fitted pipeline to ONNX, serve it, and gate it on parity with scikit-learn.

``export_onnx`` is skl2onnx's ``to_onnx`` on the pipeline's ``TfidfLinearTagger``, whose
registered converter (``onnx_converter``) writes the fast graph of ``onnx_graph`` (see its
docstring for why not skl2onnx's stock TF-IDF converter). It adds what serving reads
(``shared.serving.model_format``'s metadata) and makes the bytes reproducible.
``OnnxTagger`` (``shared.serving.onnx_tagger``) serves them, and ``assert_parity``
(``onnx_parity``) proves they agree with the pipeline.
"""

from __future__ import annotations

import json

import onnx
from onnx import helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import StringTensorType
from sklearn.pipeline import Pipeline

from shared.ml.onnx_converter import TfidfLinearTagger, register_tagger_converter
from shared.ml.onnx_graph import OPSETS
from shared.ml.onnx_parity import (
    DEFAULT_PARITY_TOLERANCE,
    ParityError,
    ParityReport,
    assert_parity,
    check_parity,
)
from shared.serving.model_format import (
    GRAPH_FORMAT,
    INPUT_NAME,
    META_CLASSES,
    META_FORMAT,
    META_INPUT,
    META_VOCABULARY_SIZE,
)

__all__ = [
    "DEFAULT_PARITY_TOLERANCE",
    "ParityError",
    "ParityReport",
    "assert_parity",
    "check_parity",
    "export_onnx",
]

GRAPH_NAME = "tagstream_tagger"


def export_onnx(pipeline: Pipeline) -> bytes:
    """Serialise a fitted ``build_pipeline`` pipeline to ONNX; same pipeline, same bytes."""
    tagger = TfidfLinearTagger.from_pipeline(pipeline)
    register_tagger_converter()
    model = to_onnx(
        tagger,
        initial_types=[(INPUT_NAME, StringTensorType([None]))],
        target_opset=OPSETS,
        name=GRAPH_NAME,  # skl2onnx names graphs with a random uuid otherwise
    )
    # skl2onnx lists opsets in set order, which changes with Python's string hash seed.
    opsets = sorted(model.opset_import, key=lambda opset: opset.domain)
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    helper.set_model_props(
        model,
        {
            META_FORMAT: GRAPH_FORMAT,
            META_CLASSES: json.dumps([str(c) for c in tagger.classes_]),
            META_VOCABULARY_SIZE: str(len(tagger.vectorizer.vocabulary_)),
            # Verbatim although the module is now shared.serving.text: serving never reads
            # it, and these bytes are part of the artifact.
            META_INPUT: "shared.ml.text.prepare_text output: tokens separated by spaces",
        },
    )
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)
