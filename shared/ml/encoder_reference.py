"""A plain numpy forward pass of the BERT sentence encoder: the reference the ONNX graph
built by ``shared.ml.encoder_graph`` is proven against (in float64, step by step as the
model's authors wrote it, sharing no code with the graph builder)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import erf

from shared.ml.encoder_graph import BertConfig, Weights

F64 = npt.NDArray[np.float64]


def _layer_norm(x: F64, weight: F64, bias: F64, eps: float) -> F64:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray((x - mean) / np.sqrt(var + eps) * weight + bias)


def reference_embeddings(
    config: BertConfig,
    weights: Weights,
    input_ids: npt.NDArray[np.int64],
    attention_mask: npt.NDArray[np.int64],
) -> F64:
    """L2-normalised mean-pooled last hidden states, (batch, hidden), float64."""
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    batch, tokens = input_ids.shape
    heads, size = config.num_attention_heads, config.head_size
    eps = config.layer_norm_eps
    mask = attention_mask.astype(np.float64)

    def linear(x: F64, prefix: str) -> F64:
        return np.asarray(x @ w[f"{prefix}.weight"].T + w[f"{prefix}.bias"])

    def norm(x: F64, prefix: str) -> F64:
        return _layer_norm(x, w[f"{prefix}.weight"], w[f"{prefix}.bias"], eps)

    hidden = (
        w["embeddings.word_embeddings.weight"][input_ids]
        + w["embeddings.position_embeddings.weight"][:tokens][None]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    hidden = norm(hidden, "embeddings.LayerNorm")
    masked_out = (1.0 - mask)[:, None, None, :] * -1e30
    for layer in range(config.num_hidden_layers):
        p = f"encoder.layer.{layer}"

        def split(x: F64) -> F64:
            return x.reshape(batch, tokens, heads, size).transpose(0, 2, 1, 3)

        q = split(linear(hidden, f"{p}.attention.self.query"))
        k = split(linear(hidden, f"{p}.attention.self.key"))
        v = split(linear(hidden, f"{p}.attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size) + masked_out
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, tokens, heads * size)
        hidden = norm(
            linear(context, f"{p}.attention.output.dense") + hidden,
            f"{p}.attention.output.LayerNorm",
        )
        inner = linear(hidden, f"{p}.intermediate.dense")
        inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))
        hidden = norm(linear(inner, f"{p}.output.dense") + hidden, f"{p}.output.LayerNorm")
    pooled = (hidden * mask[:, :, None]).sum(axis=1) / np.maximum(
        mask.sum(axis=1, keepdims=True), 1e-9
    )
    return np.asarray(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
