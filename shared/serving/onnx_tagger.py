"""Serving-side inference: one onnxruntime session over an exported tagging model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from shared.serving.model_format import (
    GRAPH_FORMAT,
    INPUT_NAME,
    META_CLASSES,
    META_FORMAT,
    META_VOCABULARY_SIZE,
    OUTPUT_NAME,
)

# Rows per run so that every (row, term) key stays below 2^24 and the graph takes its
# cheapest exact branch; larger batches are split, which costs nothing measurable.
_FAST_KEY_LIMIT = 2**24
# The graph pads every row to the longest one. A batch whose padded size (in characters)
# exceeds its real size this many times plus the slack runs in groups of similar length:
# one 800-token text in a batch of 1024 otherwise made inference 20x slower (measured).
# Batches of dataset texts stay below 3x and run whole.
_PADDING_FACTOR = 4
_PADDING_SLACK = 50_000


class Tagger(Protocol):
    """What serving needs of a model: its classes and batched probabilities.

    ``OnnxTagger`` serves; ``shared.ml.scoring.SklearnTagger`` is the reference pipeline
    behind the same interface.
    """

    @property
    def classes(self) -> list[str]: ...

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.floating[Any]]: ...


def session_options(intra_op_threads: int = 1) -> ort.SessionOptions:
    """Options for one session per process on a small (2-core) machine.

    One intra-op thread by default: the graph is a chain of cheap kernels, a second
    thread buys little (measured in ``tests/bench``), and the other core stays free for
    the service's event loop. Spinning is off so idle pool threads do not burn CPU.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def open_session(
    model: bytes | Path,
    *,
    intra_op_threads: int = 1,
    expected_format: str | None = None,
    what: str = "model",
) -> tuple[ort.InferenceSession, dict[str, str]]:
    """A CPU session over ``model`` (bytes or a path) and its custom metadata.

    With ``expected_format``, a model whose ``META_FORMAT`` differs is refused as not a
    tagstream ``what``.
    """
    source = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(
        source, session_options(intra_op_threads), providers=["CPUExecutionProvider"]
    )
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if expected_format is not None and meta.get(META_FORMAT) != expected_format:
        raise ValueError(
            f"not a tagstream {what} (format {meta.get(META_FORMAT)!r}, "
            f"expected {expected_format!r})"
        )
    return session, meta


class OnnxTagger:
    """Class probabilities for prepared texts, from an ONNX model built by ``export_onnx``."""

    def __init__(self, model: bytes | Path, *, intra_op_threads: int = 1) -> None:
        self._session, meta = open_session(
            model,
            intra_op_threads=intra_op_threads,
            expected_format=GRAPH_FORMAT,
            what="tagging model",
        )
        self._classes: list[str] = [str(c) for c in json.loads(meta[META_CLASSES])]
        vocabulary_size = int(meta[META_VOCABULARY_SIZE])
        self._rows_per_run = max(1, (_FAST_KEY_LIMIT - 1) // max(1, vocabulary_size))

    @property
    def classes(self) -> list[str]:
        """Class names in the order of the probability columns (scikit-learn's ``classes_``)."""
        return list(self._classes)

    def predict_proba(
        self, texts: Sequence[str] | npt.NDArray[np.object_]
    ) -> npt.NDArray[np.float64]:
        """Probabilities, shape (len(texts), n_classes), float64; rows sum to 1.

        ``texts`` must come from ``shared.serving.text.prepare_text``; any string is accepted
        (empty, unknown words), but only prepared text matches what the model was trained on.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        batch = np.asarray(texts, dtype=object)
        if batch.ndim != 1:
            raise ValueError(f"texts must be one-dimensional, got shape {batch.shape}")
        if len(batch) == 0:
            return np.empty((0, len(self._classes)), dtype=np.float64)
        lengths = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
        padded = int(lengths.max()) * len(batch)
        if len(batch) <= self._rows_per_run and (
            padded <= _PADDING_FACTOR * int(lengths.sum()) + _PADDING_SLACK
        ):
            return self._run(batch)
        proba = np.empty((len(batch), len(self._classes)), dtype=np.float64)
        for rows in self._groups(lengths):
            proba[rows] = self._run(batch[rows])
        return proba

    def _groups(self, lengths: npt.NDArray[np.int64]) -> list[npt.NDArray[np.intp]]:
        """Row indices by length class (lengths within 2x of each other), in bounded runs."""
        length_class = np.log2(lengths + 1).astype(np.int64)
        order = np.argsort(length_class, kind="stable")
        bounds = np.flatnonzero(np.diff(length_class[order])) + 1
        return [
            group[start : start + self._rows_per_run]
            for group in np.split(order, bounds)
            for start in range(0, len(group), self._rows_per_run)
        ]

    def _run(self, batch: npt.NDArray[np.object_]) -> npt.NDArray[np.float64]:
        (proba,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return np.asarray(proba, dtype=np.float64)
