"""The tagging model's fast ONNX graph: prepared text -> class probabilities.

``emit_tagger`` writes it into a ``GraphSink``; ``shared.ml.onnx_converter`` registers it
as skl2onnx's converter for ``TfidfLinearTagger`` (the fitted TF-IDF + logistic
regression pair), so ``skl2onnx.to_onnx`` builds every tagging model with these nodes.

Why not skl2onnx's stock TfidfVectorizer + LogisticRegression converters: its TF-IDF
converter tokenises with a regex that can differ from scikit-learn's (max |Δp| ~3.6e-3 on
our data) and emits a dense (batch x vocabulary) matrix, which made batched inference
barely faster than scikit-learn (1.1x at 1024; ``tests/bench/bench_inference.py`` keeps
measuring it). This graph keeps the work proportional to the number of tokens instead:

1. ``StringSplit`` on spaces (the same tokens as ``TOKEN_PATTERN``), plus word n-grams
   rebuilt with ``StringConcat`` when the vectorizer uses them;
2. ``LabelEncoder`` maps each token to its vocabulary index; unknown tokens are dropped;
3. the l2-normalised TF-IDF dot product is folded into per-token sums:
   ``z = Σ_i w[id_i] / sqrt(Σ_i idf[id_i]² · count_i) + b`` with ``w = idf · coef`` and
   ``count_i`` the number of times token i's term occurs in its document, since
   ``Σ_t (count_t · idf_t)² = Σ_i idf[id_i]² · count_i``;
4. ``count_i`` comes from the contrib ``Unique`` op (hash based; the standard ``Unique``
   and a per-row ``TopK`` sort were several times slower) over exact float32 keys of
   (row, term); ``ScatterND`` adds the per-token terms into their rows;
5. ``Softmax`` of the logits, which is also what a binary ``LogisticRegression`` computes
   once its single weight vector becomes the pair ``(0, w)``.

Weights, sums and probabilities are float64 (float32 sums drifted by up to 6e-5 on a
46k-token document with trigrams; float64 costs no measurable time). The contrib op makes the model
ONNX Runtime specific, which is what serves it. The parity gate in ``onnx_parity`` is
the proof of correctness.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSETS = {"": 21, "ai.onnx.ml": 3, "com.microsoft": 1}
"""The opset of each domain the graph's nodes use (skl2onnx supports ai.onnx.ml up to 3)."""
# float32 holds every integer below 2^24 exactly; above that, keys are written as
# mantissa (2^23 + k mod 2^23) times 2^(k div 2^23), exact up to 104 · 2^23.
_EXACT_FLOAT_LIMIT = 2**24
_MANTISSA = 2**23
_MAX_EXPONENT = 104
MAX_KEYS = _MAX_EXPONENT * _MANTISSA
"""Rows x vocabulary size must stay below this; beyond it the graph fails loudly."""


@dataclass(frozen=True)
class LinearTfidfModel:
    """What the graph needs from a fitted TF-IDF + logistic regression pipeline."""

    vocabulary: Sequence[str]  # terms in feature-index order
    idf: npt.NDArray[np.float64]  # (n_terms,)
    coef: npt.NDArray[np.float64]  # (n_classes, n_terms), or (1, n_terms) when binary
    intercept: npt.NDArray[np.float64]  # (n_classes,) or (1,)
    classes: Sequence[str]
    ngram_range: tuple[int, int] = (1, 1)


class GraphSink(ABC):
    """Where ``emit_tagger`` writes nodes and constants.

    Names given to ``const``, ``op`` and ``ops`` are seeds: a sink may make them unique and
    returns the names it used. ``add_node`` takes its names as they are (the graph's output).
    Node names follow their first output.
    """

    @abstractmethod
    def unique_name(self, seed: str) -> str:
        """A name for a new value, unused so far in the whole model."""

    @abstractmethod
    def add_initializer(self, tensor: onnx.TensorProto) -> None: ...

    @abstractmethod
    def add_node(
        self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], domain: str, **attrs: Any
    ) -> None: ...

    def const(self, name: str, value: npt.ArrayLike, dtype: npt.DTypeLike) -> str:
        name = self.unique_name(name)
        self.add_initializer(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], output: str, **attrs: Any) -> str:
        return self.ops(op_type, inputs, [output], **attrs)[0]

    def ops(
        self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any
    ) -> list[str]:
        domain = str(attrs.pop("domain", ""))
        names = [self.unique_name(output) for output in outputs]
        self.add_node(op_type, inputs, names, domain, **attrs)
        return names


class _Graph(GraphSink):
    """Collects the nodes and initializers of a subgraph, named by the outer sink."""

    def __init__(self, unique_name: Callable[[str], str]) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._unique_name = unique_name

    def unique_name(self, seed: str) -> str:
        return self._unique_name(seed)

    def add_initializer(self, tensor: onnx.TensorProto) -> None:
        self.initializers.append(tensor)

    def add_node(
        self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], domain: str, **attrs: Any
    ) -> None:
        node = helper.make_node(op_type, inputs, outputs, name=outputs[0], domain=domain, **attrs)
        self.nodes.append(node)


def _ngrams(g: GraphSink, tokens: str, ngram_range: tuple[int, int], axis: str) -> str:
    """Every n-gram of the range, joined by one space as scikit-learn joins them.

    Slices that run into a row's padding produce strings with a leading or trailing space,
    which no vocabulary term has, so they count as unknown.
    """
    low, high = ngram_range
    if high == 1:
        return tokens
    space = g.const("space", np.array(" ", dtype=object), object)
    end = g.const("int_max", [np.iinfo(np.int64).max], np.int64)
    parts = [tokens] if low == 1 else []
    for n in range(max(low, 2), high + 1):
        gram = ""
        for j in range(n):
            start = g.const(f"gram{n}_start{j}", [j], np.int64)
            stop = end if j == n - 1 else g.const(f"gram{n}_stop{j}", [j - n + 1], np.int64)
            piece = g.op("Slice", [tokens, start, stop, axis], f"gram{n}_piece{j}")
            if j:
                gram = g.op("StringConcat", [gram, space], f"gram{n}_sep{j}")
                gram = g.op("StringConcat", [gram, piece], f"gram{n}_join{j}")
            else:
                gram = piece
        parts.append(gram)
    return parts[0] if len(parts) == 1 else g.op("Concat", parts, "grams", axis=1)


def _float_keys(g: GraphSink, key: str) -> str:
    """Exact float32 images of non-negative int64 keys (contrib ``Unique`` takes floats)."""
    small_graph = _Graph(g.unique_name)
    key_f_small = small_graph.op("Cast", [key], "key_f_small", to=TensorProto.FLOAT)
    small = helper.make_graph(
        small_graph.nodes,
        "small_keys",
        [],
        [helper.make_tensor_value_info(key_f_small, TensorProto.FLOAT, [None])],
    )
    large_graph = _Graph(g.unique_name)
    mantissa = large_graph.const("mantissa_i", _MANTISSA, np.int64)
    mantissa_f = large_graph.const("mantissa_f", float(_MANTISSA), np.float32)
    powers = large_graph.const("powers_of_two", 2.0 ** np.arange(_MAX_EXPONENT), np.float32)
    low = large_graph.op("Mod", [key, mantissa], "key_low")
    high = large_graph.op("Div", [key, mantissa], "key_high")
    low_f = large_graph.op("Cast", [low], "key_low_f", to=TensorProto.FLOAT)
    significand = large_graph.op("Add", [low_f, mantissa_f], "key_significand")
    scale = large_graph.op("Gather", [powers, high], "key_scale")
    key_f_large = large_graph.op("Mul", [significand, scale], "key_f_large")
    large = helper.make_graph(
        large_graph.nodes,
        "large_keys",
        [],
        [helper.make_tensor_value_info(key_f_large, TensorProto.FLOAT, [None])],
        initializer=large_graph.initializers,
    )
    # The branch follows the largest key (int64's minimum when there is none), which also
    # makes the If read ``key`` as an input: skl2onnx's topological sort ignores the outer
    # names a subgraph reads, and would otherwise place the If before ``key`` exists.
    largest = g.op("ReduceMax", [key], "key_max", keepdims=0)
    exact = g.const("exact_float_limit", _EXACT_FLOAT_LIMIT, np.int64)
    fits = g.op("Less", [largest, exact], "fits")
    return g.op("If", [fits], "key_f", then_branch=small, else_branch=large)


def emit_tagger(g: GraphSink, model: LinearTfidfModel, text: str, probabilities: str) -> None:
    """The graph from ``text`` (string, [batch]) to ``probabilities`` (double, [batch, C])."""
    coef, intercept = np.asarray(model.coef, np.float64), np.asarray(model.intercept, np.float64)
    if coef.shape[0] == 1:  # binary: softmax over (0, z) equals (1 - sigmoid(z), sigmoid(z))
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    n_terms, n_classes = len(model.vocabulary), coef.shape[0]
    if coef.shape != (n_classes, n_terms) or len(model.classes) != n_classes:
        raise ValueError("coefficients, vocabulary and classes do not fit together")
    idf = np.asarray(model.idf, np.float64)

    weights = g.const("weights", (coef * idf).T, np.float64)  # [terms, classes]
    idf_squared = g.const("idf_squared", idf**2, np.float64)
    bias = g.const("bias", intercept, np.float64)
    terms = g.const("n_terms", n_terms, np.int64)
    zero, one = g.const("zero", 0, np.int64), g.const("one", 1, np.int64)
    flat = g.const("flat", [-1], np.int64)
    last_axis = g.const("last_axis", [-1], np.int64)
    axis_1 = g.const("axis_1", [1], np.int64)

    # On prepared text (single spaces) both split modes agree. For unigrams the delimiter
    # mode (faster) is exact on any text, since the empty strings it yields between
    # repeated spaces are unknown terms; n-grams need runs of spaces collapsed.
    split_attrs = {"delimiter": " "} if model.ngram_range == (1, 1) else {}
    tokens = g.ops("StringSplit", [text], ["tokens", "token_counts"], **split_attrs)[0]
    grams = _ngrams(g, tokens, model.ngram_range, axis_1)
    ids = g.op(
        "LabelEncoder",
        [grams],
        "term_ids",
        domain="ai.onnx.ml",
        keys_strings=list(model.vocabulary),
        values_int64s=list(range(n_terms)),
        default_int64=n_terms,
    )

    # Keep known terms only, keyed by row * n_terms + term (row-major, so rows stay grouped).
    shape = g.op("Shape", [ids], "ids_shape")
    n_rows = g.op("Gather", [shape, zero], "n_rows")
    rows = g.op("Range", [zero, n_rows, one], "rows")
    row_base = g.op("Unsqueeze", [g.op("Mul", [rows, terms], "row_base_1d"), axis_1], "row_base")
    keys_2d = g.op("Add", [ids, row_base], "keys_2d")
    known_2d = g.op("Less", [ids, terms], "known_2d")
    known = g.op("Reshape", [known_2d, flat], "known")
    key = g.op("Compress", [g.op("Reshape", [keys_2d, flat], "keys_all"), known], "key", axis=0)
    row_1d = g.op("Div", [key, terms], "key_row")
    row = g.op("Unsqueeze", [row_1d, last_axis], "key_row_index")
    # key - row * n_terms: cheaper than an int64 Mod.
    term = g.op("Sub", [key, g.op("Mul", [row_1d, terms], "key_row_base")], "key_term")

    # How often each (row, term) occurs: count_i for every kept token.
    _, slot, counts = g.ops(
        "Unique",
        [_float_keys(g, key)],
        ["unique_keys", "unique_slot", "unique_counts"],
        domain="com.microsoft",
    )
    count = g.op(
        "Cast",
        [g.op("Gather", [counts, slot], "token_count_i")],
        "token_count",
        to=TensorProto.DOUBLE,
    )
    square = g.op("Mul", [g.op("Gather", [idf_squared, term], "token_idf2"), count], "token_sq")
    token_weights = g.op("Gather", [weights, term], "token_weights")

    # Sum per row. (A single scatter of (w, idf²·count) rows is slower: ORT's broadcasting
    # Mul/Add needed to build it cost more than the second scatter.)
    rows_1d = g.op("Reshape", [n_rows, flat], "n_rows_1d")
    raw_shape = g.op(
        "Concat", [rows_1d, g.const("n_classes_1d", [n_classes], np.int64)], "raw_shape", axis=0
    )
    zero_f = numpy_helper.from_array(np.zeros(1, np.float64))
    raw_zero = g.op("ConstantOfShape", [raw_shape], "raw_zero", value=zero_f)
    norm_zero = g.op("ConstantOfShape", [rows_1d], "norm_zero", value=zero_f)
    raw = g.op("ScatterND", [raw_zero, row, token_weights], "raw", reduction="add")
    norm_sq = g.op("ScatterND", [norm_zero, row, square], "norm_sq", reduction="add")

    # Documents without a known term have norm 0 and raw 0: their logits are the bias.
    tiny = g.const("tiny", 1e-30, np.float64)
    norm = g.op("Max", [g.op("Sqrt", [norm_sq], "norm_raw"), tiny], "norm")
    scaled = g.op("Div", [raw, g.op("Unsqueeze", [norm, axis_1], "norm_col")], "scaled")
    logits = g.op("Add", [scaled, bias], "logits")
    g.add_node("Softmax", [logits], [probabilities], "", axis=1)
