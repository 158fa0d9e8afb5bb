"""Serving-side sentence encoder: ``tokenizers`` + one onnxruntime session, nothing else.

The graph is built by ``shared.ml.encoder_graph`` (training); this reads it and the
tokenizer it was built with (``tokenizer.json``, both registered with the model version).
Texts are truncated to ``max_tokens`` and each runs on its own: the int8 graph quantises
its activations dynamically, with one scale per run, so a text batched with others got
probabilities a few thousandths apart from the same text alone (measured): a redelivered
item could flip at its threshold. One text per run costs no padding and, at ~10 ms of
compute per text, no measurable call overhead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from shared.serving.onnx_tagger import open_session

INPUT_IDS = "input_ids"
INPUT_MASK = "attention_mask"
OUTPUT_EMBEDDING = "embedding"
ENCODER_FORMAT = "tagstream-sentence-encoder/1"
META_DIMENSION = "tagstream.dimension"
DEFAULT_MAX_TOKENS = 128
RUN_ROWS = 1  # see the module docstring: an item's embedding must not depend on its batch


class SentenceEncoder:
    """Unit-length sentence embeddings, shape (len(texts), dimension), float32."""

    def __init__(
        self,
        model: bytes | Path,
        tokenizer: bytes | Path,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        intra_op_threads: int = 1,
    ) -> None:
        self._session, meta = open_session(
            model,
            intra_op_threads=intra_op_threads,
            expected_format=ENCODER_FORMAT,
            what="sentence encoder",
        )
        self.dimension = int(meta[META_DIMENSION])
        raw = tokenizer if isinstance(tokenizer, bytes) else Path(tokenizer).read_bytes()
        self._tokenizer = Tokenizer.from_str(raw.decode())
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self.max_tokens = max_tokens

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, with [CLS] and [SEP], truncated to ``max_tokens``."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        ids = self.tokenize(texts)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), RUN_ROWS):
            rows = order[start : start + RUN_ROWS]
            width = int(lengths[rows].max())
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, row in enumerate(rows):
                input_ids[r, : lengths[row]] = ids[row]
                mask[r, : lengths[row]] = 1
            (embedding,) = self._session.run(
                [OUTPUT_EMBEDDING], {INPUT_IDS: input_ids, INPUT_MASK: mask}
            )
            out[rows] = embedding
        return out
