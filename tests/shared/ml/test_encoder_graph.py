"""The stage-2 encoder graph, built from safetensors weights, against a numpy forward pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.ml.encoder_graph import (
    BertConfig,
    build_encoder_graph,
    export_encoder,
    read_weights,
)
from shared.ml.encoder_reference import reference_embeddings
from shared.serving.encoder import SentenceEncoder
from tests.fixtures.encoder import write_tiny_encoder

TEXTS = [
    "bert transformer for text classification",
    "yolo",
    "image segmentation with a camera and pixels for detection of data",
    "",
    "kubernetes deployment monitoring pipeline drift serving w12 w13 w14 w15 w16 w17",
]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_encoder(tmp_path_factory.mktemp("encoder"))


def padded(ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(map(len, ids))
    input_ids = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros_like(input_ids)
    for row, tokens in enumerate(ids):
        input_ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
    return input_ids, mask


def test_the_graph_computes_the_numpy_forward_pass(encoder_dir: Path) -> None:
    config = BertConfig.read(encoder_dir)
    weights = read_weights(encoder_dir)
    model = build_encoder_graph(config, weights).SerializeToString()
    encoder = SentenceEncoder(model, encoder_dir / "tokenizer.json")
    reference = reference_embeddings(config, weights, *padded(encoder.tokenize(TEXTS)))
    embeddings = encoder.encode(TEXTS)
    assert embeddings.shape == (len(TEXTS), config.hidden_size)
    np.testing.assert_allclose(embeddings, reference, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_padding_does_not_change_an_embedding(encoder_dir: Path) -> None:
    encoder = SentenceEncoder(
        export_encoder(encoder_dir, quantize=False), encoder_dir / "tokenizer.json"
    )
    together = encoder.encode(TEXTS)
    alone = np.vstack([encoder.encode([text]) for text in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_truncation_bounds_the_tokens(encoder_dir: Path) -> None:
    encoder = SentenceEncoder(
        export_encoder(encoder_dir, quantize=False), encoder_dir / "tokenizer.json", max_tokens=6
    )
    (ids,) = encoder.tokenize([TEXTS[2]])
    assert len(ids) == 6
    np.testing.assert_allclose(
        encoder.encode([TEXTS[2]]), encoder.encode(["image segmentation with a"]), atol=1e-5
    )


def test_int8_export_is_reproducible_and_close_to_float(encoder_dir: Path) -> None:
    first, second = export_encoder(encoder_dir), export_encoder(encoder_dir)
    assert first == second
    tokenizer = encoder_dir / "tokenizer.json"
    exact = SentenceEncoder(export_encoder(encoder_dir, quantize=False), tokenizer).encode(TEXTS)
    quantized = SentenceEncoder(first, tokenizer).encode(TEXTS)
    cosine = (exact * quantized).sum(axis=1)
    assert cosine.min() > 0.9, cosine


def test_only_bert_with_gelu_is_accepted(encoder_dir: Path, tmp_path: Path) -> None:
    config = json.loads((encoder_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(ValueError, match="erf GELU"):
        BertConfig.read(tmp_path)


def test_the_serving_encoder_refuses_another_model(encoder_dir: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    other = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    other.ir_version = 8
    with pytest.raises(ValueError, match="not a tagstream sentence encoder"):
        SentenceEncoder(other.SerializeToString(), encoder_dir / "tokenizer.json")
