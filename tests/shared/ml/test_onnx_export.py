"""ONNX export: determinism, inference edge cases, and a parity gate that can fail."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import StringTensorType
from sklearn.pipeline import Pipeline

from shared.ml.config import ModelConfig
from shared.ml.onnx_converter import TfidfLinearTagger, register_tagger_converter
from shared.ml.onnx_export import ParityError, assert_parity, check_parity, export_onnx
from shared.ml.onnx_graph import OPSETS
from shared.ml.pipeline import build_pipeline
from shared.serving.model_format import INPUT_NAME, OUTPUT_NAME, VECTORIZER_STEP
from shared.serving.onnx_tagger import OnnxTagger
from shared.serving.text import prepare_text

TOLERANCE = 1e-4
WORDS = {
    "alpha": ["image", "pixels", "camera", "detection", "segmentation", "yolo"],
    "beta": ["text", "tokens", "bert", "translation", "grammar", "gpt"],
    "gamma": ["deploy", "monitoring", "serving", "drift", "kubernetes", "ci"],
}
SHARED = ["model", "data", "training", "results", "the", "and", "of", "new"]

# Raw strings, before and after prepare_text: the graph must agree with scikit-learn on
# both (the prepared ones are what it serves; the raw ones prove the split is exact).
WEIRD = [
    "",
    " ",
    "   ",
    "!!!",
    "a",
    "...,;:",
    "🙂🙂 🚀",
    "日本語 テキスト ünïcödé",
    "123 4567 123 123",
    "image image image image",
    "image  image   pixels",
    " leading and trailing ",
    "tab\tseparated\tcamera",
    "new\nline bert",
    "nul\x00byte gpt",
    "unseen words only here",
    "model data " * 2000,
    "camera bert drift " * 300,
]


def corpus(per_class: int = 25, seed: int = 0, classes: dict[str, list[str]] = WORDS):
    """Prepared texts with repeated words (counts > 1) and shared, uninformative words."""
    rng = random.Random(seed)
    texts, tags = [], []
    for tag, words in classes.items():
        for _ in range(per_class):
            tokens = rng.choices(words, k=rng.randint(2, 6)) + rng.choices(SHARED, k=4)
            rng.shuffle(tokens)
            texts.append(prepare_text(" ".join(tokens)))
            tags.append(tag)
    return texts, tags


def probe_texts(train: list[str]) -> list[str]:
    return train + WEIRD + [prepare_text(w) for w in WEIRD]


def fit(config: ModelConfig | None = None, seed: int = 0, **corpus_args) -> Pipeline:
    texts, tags = corpus(**corpus_args)
    return build_pipeline(config or ModelConfig(), seed).fit(texts, tags)


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return fit()


@pytest.fixture(scope="module")
def model(pipeline: Pipeline) -> bytes:
    return export_onnx(pipeline)


def _edit_initializer(model: bytes, name: str, change) -> bytes:
    proto = onnx.load_from_string(model)
    for i, tensor in enumerate(proto.graph.initializer):
        if tensor.name == name:
            array = change(numpy_helper.to_array(tensor).copy())
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, name))
            return proto.SerializeToString()
    raise AssertionError(f"no initializer {name}")


# --- determinism -------------------------------------------------------------------------


def test_export_is_deterministic(pipeline: Pipeline, model: bytes) -> None:
    assert export_onnx(pipeline) == model
    assert export_onnx(fit()) == model  # a second fit on the same data and seed


def test_different_training_data_gives_a_different_model(model: bytes) -> None:
    assert export_onnx(fit(seed=0, per_class=26)) != model


EXPORT_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys
    from shared.ml.config import ModelConfig
    from shared.ml.onnx_export import export_onnx
    from shared.ml.pipeline import build_pipeline
    texts, tags = json.load(sys.stdin)
    pipeline = build_pipeline(ModelConfig(ngram_max=2), seed=0).fit(texts, tags)
    print(hashlib.sha256(export_onnx(pipeline)).hexdigest())
    """
)


def test_export_bytes_do_not_depend_on_the_string_hash_seed() -> None:
    """skl2onnx lists opsets in set order; under these seeds its raw order differs."""
    texts, tags = corpus()
    here = export_onnx(build_pipeline(ModelConfig(ngram_max=2), seed=0).fit(texts, tags))
    digests = set()
    for hash_seed in ("1", "3", "4"):
        done = subprocess.run(
            [sys.executable, "-c", EXPORT_SCRIPT],
            input=json.dumps([texts, tags]).encode(),
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode()
        digests.add(done.stdout.decode().strip())
    assert digests == {hashlib.sha256(here).hexdigest()}


# --- skl2onnx: the registered converter ----------------------------------------------------


def test_to_onnx_on_a_fitted_pipeline_yields_the_registered_graph(
    pipeline: Pipeline, model: bytes
) -> None:
    register_tagger_converter()
    converted = to_onnx(
        TfidfLinearTagger.from_pipeline(pipeline),
        initial_types=[(INPUT_NAME, StringTensorType([None]))],
        target_opset=OPSETS,
    )
    exported = onnx.load_from_string(model)
    assert [n.op_type for n in converted.graph.node] == [n.op_type for n in exported.graph.node]
    assert list(converted.graph.node) == list(exported.graph.node)
    assert list(converted.graph.initializer) == list(exported.graph.initializer)
    ops = {(n.domain, n.op_type) for n in converted.graph.node}
    assert {("ai.onnx.ml", "LabelEncoder"), ("com.microsoft", "Unique")} <= ops
    assert not {op for _, op in ops} & {"TfIdfVectorizer", "LinearClassifier", "ZipMap"}
    session = ort.InferenceSession(
        converted.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    texts = probe_texts(corpus()[0])
    (proba,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.array(texts, dtype=object)})
    np.testing.assert_allclose(proba, pipeline.predict_proba(texts), atol=1e-9)


def test_a_plain_pipeline_still_converts_with_the_stock_converters(pipeline: Pipeline) -> None:
    """The benchmark's reference and other models' heads keep skl2onnx's own converters."""
    register_tagger_converter()
    stock = to_onnx(
        pipeline,
        initial_types=[(INPUT_NAME, StringTensorType([None, 1]))],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
    )
    ops = {n.op_type for n in stock.graph.node}
    assert {"TfIdfVectorizer", "LinearClassifier"} <= ops
    assert "LabelEncoder" not in ops


def test_the_converter_refuses_a_two_dimensional_text_input(pipeline: Pipeline) -> None:
    register_tagger_converter()
    with pytest.raises(ValueError, match="one-dimensional"):
        to_onnx(
            TfidfLinearTagger.from_pipeline(pipeline),
            initial_types=[(INPUT_NAME, StringTensorType([None, 1]))],
            target_opset=OPSETS,
        )


# --- inference ---------------------------------------------------------------------------


def test_classes_come_from_the_model_in_scikit_learn_order(
    pipeline: Pipeline, model: bytes
) -> None:
    assert OnnxTagger(model).classes == [str(c) for c in pipeline.classes_] == sorted(WORDS)


def test_loads_from_a_path(tmp_path: Path, model: bytes) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(model)
    assert OnnxTagger(path).predict_proba(["camera"]).shape == (1, 3)


def test_probabilities_have_one_row_per_text(model: bytes) -> None:
    proba = OnnxTagger(model).predict_proba(probe_texts([]))
    assert proba.shape == (2 * len(WEIRD), 3)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_empty_batch(model: bytes) -> None:
    tagger = OnnxTagger(model)
    assert tagger.predict_proba([]).shape == (0, 3)
    assert tagger.predict_proba(np.array([], dtype=object)).shape == (0, 3)


def test_the_graph_itself_accepts_an_empty_batch(model: bytes) -> None:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (proba,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.array([], dtype=object)})
    assert proba.shape == (0, 3)


def test_one_very_long_text_in_a_batch_keeps_rows_in_order(
    pipeline: Pipeline, model: bytes
) -> None:
    """Such a batch runs in groups of similar length; rows must come back where they were."""
    batch = probe_texts(corpus()[0])
    batch.insert(5, "camera bert drift pixels " * 3000)
    np.testing.assert_allclose(
        OnnxTagger(model).predict_proba(batch), pipeline.predict_proba(batch), atol=1e-9
    )


def test_text_without_known_words_gets_the_prior(pipeline: Pipeline, model: bytes) -> None:
    proba = OnnxTagger(model).predict_proba(["", "unseen words", "!!!"])
    np.testing.assert_allclose(proba, pipeline.predict_proba([""]).repeat(3, axis=0), atol=1e-9)


def test_rejects_a_single_string_and_foreign_models(model: bytes) -> None:
    with pytest.raises(TypeError):
        OnnxTagger(model).predict_proba("camera")
    identity = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "foreign",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
        ),
        opset_imports=[helper.make_opsetid("", 21)],
        ir_version=10,
    )
    with pytest.raises(ValueError, match="not a tagstream"):
        OnnxTagger(identity.SerializeToString())


# --- parity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(),
        ModelConfig(ngram_max=2),
        ModelConfig(ngram_max=3, min_df=2),
        ModelConfig(max_features=12, class_weight=None, c=0.5),
    ],
    ids=["unigrams", "bigrams", "trigrams-min-df", "max-features"],
)
def test_parity_on_training_and_weird_texts(config: ModelConfig) -> None:
    texts, tags = corpus()
    pipeline = build_pipeline(config, seed=1).fit(texts, tags)
    report = assert_parity(pipeline, export_onnx(pipeline), probe_texts(texts), TOLERANCE)
    assert report.passed
    assert report.label_mismatches == 0
    assert report.max_abs_diff <= 1e-9  # float64 sums: far inside the tolerance
    assert report.n_items == len(texts) + 2 * len(WEIRD)


def test_parity_for_a_binary_model() -> None:
    """scikit-learn's binary predict_proba is a sigmoid; the graph's softmax must match it."""
    two = {k: WORDS[k] for k in ("alpha", "beta")}
    texts, tags = corpus(classes=two)
    pipeline = build_pipeline(ModelConfig(), seed=0).fit(texts, tags)
    model = export_onnx(pipeline)
    assert OnnxTagger(model).classes == ["alpha", "beta"]
    assert assert_parity(pipeline, model, probe_texts(texts), TOLERANCE).passed


def test_parity_when_row_term_keys_exceed_float32_integers() -> None:
    """Batches with (row, term) keys >= 2^24 take the graph's large-key branch."""
    rng = np.random.default_rng(0)
    n_terms = 20_000
    vocabulary = np.array([f"w{i:05d}" for i in range(n_terms)], dtype=object)

    def documents(n: int) -> list[str]:
        return [" ".join(rng.choice(vocabulary, size=rng.integers(1, 40))) for _ in range(n)]

    train = [*documents(300), " ".join(vocabulary)]  # every term is seen
    tags = [str(t) for t in rng.integers(0, 3, len(train))]
    pipeline = build_pipeline(ModelConfig(max_iter=200), seed=0).fit(train, tags)
    assert len(pipeline.named_steps[VECTORIZER_STEP].vocabulary_) == n_terms
    batch = documents(900)
    batch[7] = " ".join(batch[3].split()[:5] * 3)  # repeated terms in a late row
    assert len(batch) * n_terms >= 2**24

    model = export_onnx(pipeline)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (whole,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.array(batch, dtype=object)})
    expected = pipeline.predict_proba(batch)
    np.testing.assert_allclose(whole, expected, atol=1e-9)
    np.testing.assert_allclose(OnnxTagger(model).predict_proba(batch), expected, atol=1e-9)


# --- the gate can fail -------------------------------------------------------------------


def test_perturbed_weights_fail_the_gate(pipeline: Pipeline, model: bytes) -> None:
    broken = _edit_initializer(model, "weights", lambda w: w * 1.05)
    texts = probe_texts(corpus()[0])
    report = check_parity(pipeline, broken, texts, TOLERANCE)
    assert not report.passed
    assert report.max_abs_diff > TOLERANCE
    with pytest.raises(ParityError, match="max \\|p_onnx - p_sklearn\\|"):
        assert_parity(pipeline, broken, texts, TOLERANCE)


def test_a_tiny_perturbation_within_tolerance_passes(pipeline: Pipeline, model: bytes) -> None:
    nudged = _edit_initializer(model, "bias", lambda b: b + 1e-7)
    assert assert_parity(pipeline, nudged, corpus()[0], TOLERANCE).passed


def test_a_different_vocabulary_fails_the_gate(pipeline: Pipeline) -> None:
    proto = onnx.load_from_string(export_onnx(pipeline))
    (encoder,) = [n for n in proto.graph.node if n.op_type == "LabelEncoder"]
    (keys,) = [a for a in encoder.attribute if a.name == "keys_strings"]
    keys.strings.reverse()  # every term now points at another term's weights
    broken = proto.SerializeToString()
    report = check_parity(pipeline, broken, corpus()[0], TOLERANCE)
    assert report.label_mismatches > 0
    with pytest.raises(ParityError, match="label mismatch"):
        assert_parity(pipeline, broken, corpus()[0], TOLERANCE)


def test_a_model_of_another_pipeline_fails_the_gate(pipeline: Pipeline) -> None:
    other = export_onnx(fit(seed=0, per_class=10))
    with pytest.raises(ParityError):
        assert_parity(pipeline, other, probe_texts(corpus()[0]), TOLERANCE)


def test_different_classes_fail_the_gate(pipeline: Pipeline) -> None:
    renamed = {"delta": WORDS["alpha"], "beta": WORDS["beta"], "gamma": WORDS["gamma"]}
    other = export_onnx(fit(classes=renamed))
    report = check_parity(pipeline, other, corpus()[0], TOLERANCE)
    assert not report.passed
    assert not report.classes_match
    with pytest.raises(ParityError, match="classes"):
        assert_parity(pipeline, other, corpus()[0], TOLERANCE)


def test_the_gate_needs_texts(pipeline: Pipeline, model: bytes) -> None:
    with pytest.raises(ValueError, match="at least one"):
        check_parity(pipeline, model, [], TOLERANCE)


# --- what the graph cannot reproduce is refused ------------------------------------------


@pytest.mark.parametrize(
    "setting",
    [{"sublinear_tf": True}, {"lowercase": True}, {"token_pattern": r"\w+"}, {"binary": True}],
)
def test_unsupported_vectorizer_settings_are_refused(setting: dict[str, object]) -> None:
    pipeline = build_pipeline(ModelConfig(), seed=0)
    pipeline.set_params(**{f"{VECTORIZER_STEP}__{k}": v for k, v in setting.items()})
    pipeline.fit(*corpus())
    with pytest.raises(ValueError, match="does not reproduce"):
        export_onnx(pipeline)


def test_unfitted_or_foreign_pipelines_are_refused() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        export_onnx(build_pipeline(ModelConfig(), seed=0))
    with pytest.raises(ValueError, match="TfidfVectorizer"):
        export_onnx(Pipeline([("a", build_pipeline(ModelConfig(), 0)), ("b", "passthrough")]))


# --- the real dataset ----------------------------------------------------------------------


@pytest.mark.slow
def test_parity_on_every_row_of_the_real_dataset(dataset_path: Path) -> None:
    with dataset_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    texts = [prepare_text(r["title"], r["description"]) for r in rows]
    pipeline = build_pipeline(ModelConfig(), seed=42).fit(texts, [r["tag"] for r in rows])
    model = export_onnx(pipeline)
    report = assert_parity(pipeline, model, probe_texts(texts), TOLERANCE)
    assert report.label_mismatches == 0
    assert report.max_abs_diff <= TOLERANCE
    assert report.n_items == len(rows) + 2 * len(WEIRD)
