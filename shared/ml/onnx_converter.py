"""The fast tagging graph, registered as skl2onnx's converter for ``TfidfLinearTagger``.

skl2onnx converts a model by looking up its type: a parser declares the operator and its
outputs, a shape calculator types them, a converter writes the nodes. For
``TfidfLinearTagger`` (a fitted ``TfidfVectorizer`` + ``LogisticRegression``, as
``build_pipeline`` makes them) the converter writes ``onnx_graph.emit_tagger``'s nodes,
so ``skl2onnx.to_onnx(TfidfLinearTagger.from_pipeline(pipeline), ...)`` yields the fast
graph. The stock ``TfidfVectorizer`` and ``LogisticRegression`` converters stay registered
as they are: a plain ``Pipeline`` still converts the stock way (the benchmark's
reference), and other models' heads keep skl2onnx's own converters.

The graph reproduces only the vectorizer settings ``build_pipeline`` uses; any other value
is refused here rather than converted subtly wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, numpy_helper
from skl2onnx import update_registered_converter
from skl2onnx.common._container import ModelComponentContainer
from skl2onnx.common._topology import Operator, Scope, Variable
from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
from skl2onnx.common.utils import check_input_and_output_numbers, check_input_and_output_types
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from shared.ml.onnx_graph import OPSETS, GraphSink, LinearTfidfModel, emit_tagger
from shared.serving.model_format import OUTPUT_NAME
from shared.serving.text import TOKEN_PATTERN

ALIAS = "TagstreamTfidfLinearTagger"
"""The name skl2onnx knows the converter by."""

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


class TfidfLinearTagger(BaseEstimator):
    """A fitted TF-IDF vectorizer and logistic regression, as one model skl2onnx converts.

    It wraps already fitted steps (it is never fitted itself) and predicts what the
    pipeline they came from predicts.
    """

    def __init__(self, vectorizer: TfidfVectorizer, classifier: LogisticRegression) -> None:
        self.vectorizer = vectorizer
        self.classifier = classifier

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> TfidfLinearTagger:
        """The two fitted steps of a ``build_pipeline`` pipeline; anything else is refused."""
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
        return cls(vectorizer, classifier)

    @property
    def classes_(self) -> npt.NDArray[Any]:
        self._check_fitted()
        return np.asarray(self.classifier.classes_)

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        return np.asarray(self.classifier.predict_proba(self.vectorizer.transform(texts)))

    def _check_fitted(self) -> None:
        if not hasattr(self.vectorizer, "vocabulary_") or not hasattr(self.classifier, "coef_"):
            raise ValueError("the pipeline is not fitted")

    def linear_model(self) -> LinearTfidfModel:
        """What the graph needs; raises ``ValueError`` for what it cannot reproduce."""
        self._check_fitted()
        vectorizer, classifier = self.vectorizer, self.classifier
        params = vectorizer.get_params()
        unsupported = {
            name: params[name]
            for name, value in _REQUIRED_VECTORIZER.items()
            if params[name] != value
        }
        if unsupported:
            raise ValueError(
                f"vectorizer settings the ONNX graph does not reproduce: {unsupported}"
            )
        terms = sorted(vectorizer.vocabulary_.items(), key=lambda item: item[1])
        if [index for _, index in terms] != list(range(len(terms))):
            raise ValueError("the vectorizer's vocabulary indices are not 0..n-1")
        idf = vectorizer.idf_ if vectorizer.use_idf else np.ones(len(terms))
        return LinearTfidfModel(
            vocabulary=[term for term, _ in terms],
            idf=np.asarray(idf, dtype=np.float64),
            coef=np.asarray(classifier.coef_, dtype=np.float64),
            intercept=np.asarray(classifier.intercept_, dtype=np.float64),
            classes=[str(c) for c in classifier.classes_],
            ngram_range=tuple(vectorizer.ngram_range),
        )


class _ContainerSink(GraphSink):
    """Writes the graph into skl2onnx's container, with names unique in its scope."""

    def __init__(self, scope: Scope, container: ModelComponentContainer) -> None:
        self._scope = scope
        self._container = container

    def unique_name(self, seed: str) -> str:
        return str(self._scope.get_unique_variable_name(seed))

    def add_initializer(self, tensor: onnx.TensorProto) -> None:
        dims = list(tensor.dims)
        if tensor.data_type == TensorProto.STRING:  # the container copies raw data only
            content: Any = numpy_helper.to_array(tensor).ravel().tolist()
        else:
            content = tensor
        self._container.add_initializer(tensor.name, tensor.data_type, dims, content)

    def add_node(
        self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], domain: str, **attrs: Any
    ) -> None:
        self._container.add_node(
            op_type,
            list(inputs),
            list(outputs),
            op_domain=domain,
            op_version=OPSETS[domain],
            name=self._scope.get_unique_operator_name(outputs[0]),
            **attrs,
        )


def _parse(
    scope: Scope, model: TfidfLinearTagger, inputs: list[Variable], custom_parsers: Any = None
) -> list[Variable]:
    """One operator from the text to the probabilities: no label output, no ZipMap."""
    operator = scope.declare_local_operator(ALIAS, model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable(OUTPUT_NAME, DoubleTensorType()))
    return list(operator.outputs)


def _shape(operator: Operator) -> None:
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    check_input_and_output_types(operator, good_input_types=[StringTensorType])
    (text,) = operator.inputs
    if len(text.type.shape) != 1:
        raise ValueError(f"the text input must be one-dimensional, got {text.type.shape}")
    n_classes = len(operator.raw_operator.classes_)
    operator.outputs[0].type = DoubleTensorType([text.get_first_dimension(), n_classes])


def _convert(scope: Scope, operator: Operator, container: ModelComponentContainer) -> None:
    model = operator.raw_operator.linear_model()
    sink = _ContainerSink(scope, container)
    emit_tagger(sink, model, operator.inputs[0].full_name, operator.outputs[0].full_name)


def register_tagger_converter() -> None:
    """Make skl2onnx convert ``TfidfLinearTagger`` with the fast graph (idempotent)."""
    update_registered_converter(TfidfLinearTagger, ALIAS, _shape, _convert, parser=_parse)
