"""Stage 2 of a cascade: what it is, how it is loaded, and how it re-decides stage 1's doubts.

A cascade version registers, beside stage 1's ``model.onnx``: the sentence encoder
(``encoder.onnx`` with its ``encoder-tokenizer.json``), the classifier head on its
embeddings (``head.onnx``, exported by skl2onnx) and ``cascade.json``, the manifest with
stage 2's classes, thresholds and the digests of the other three. Stage 2 scores only the
items stage 1 routes to review; an item it is sure of (its own threshold, calibrated for
the same target precision) is auto-accepted, the rest still go to people.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.registry import ModelRegistry, ModelVersion
from shared.registry.models import CASCADE_ARTIFACT
from shared.serving.encoder import DEFAULT_MAX_TOKENS, SentenceEncoder
from shared.serving.onnx_tagger import open_session
from shared.serving.routing import Decision, route_decisions

ENCODER_ARTIFACT = "encoder.onnx"
TOKENIZER_ARTIFACT = "encoder-tokenizer.json"
HEAD_ARTIFACT = "head.onnx"
CASCADE_FORMAT = "tagstream-cascade/1"
HEAD_INPUT = "embedding"
HEAD_OUTPUT = "probabilities"


@dataclass(frozen=True, slots=True)
class CascadeManifest:
    """``cascade.json``: what stage 2 is made of and when it decides alone."""

    classes: list[str]
    thresholds: dict[str, float]
    max_tokens: int
    artifacts: dict[str, str]
    """Artifact name -> SHA-256 of the encoder, tokenizer and head, so the version id
    (derived from this manifest with stage 1's bytes) changes when any of them does."""
    encoder: dict[str, Any]
    """Where the encoder came from and how it was exported (for the model card)."""

    def to_bytes(self) -> bytes:
        body = {
            "format": CASCADE_FORMAT,
            "classes": self.classes,
            "thresholds": self.thresholds,
            "max_tokens": self.max_tokens,
            "artifacts": self.artifacts,
            "encoder": self.encoder,
        }
        return json.dumps(body, indent=2, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> CascadeManifest:
        body = json.loads(data)
        if body.get("format") != CASCADE_FORMAT:
            raise ValueError(f"not a cascade manifest (format {body.get('format')!r})")
        return cls(
            classes=[str(c) for c in body["classes"]],
            thresholds={str(k): float(v) for k, v in body["thresholds"].items()},
            max_tokens=int(body.get("max_tokens", DEFAULT_MAX_TOKENS)),
            artifacts={str(k): str(v) for k, v in body["artifacts"].items()},
            encoder=dict(body.get("encoder", {})),
        )


class HeadModel:
    """The stage-2 classifier on embeddings: one onnxruntime session over skl2onnx's graph."""

    def __init__(self, model: bytes | Path, classes: Sequence[str]) -> None:
        self._session, _ = open_session(model)
        self.classes = list(classes)

    def predict_proba(self, embeddings: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        if len(embeddings) == 0:
            return np.empty((0, len(self.classes)))
        (proba,) = self._session.run([HEAD_OUTPUT], {HEAD_INPUT: embeddings})
        return np.asarray(proba, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Stage2:
    """Sentence encoder + head, and the thresholds stage 2 decides with."""

    encoder: SentenceEncoder
    head: HeadModel
    manifest: CascadeManifest

    @property
    def classes(self) -> list[str]:
        return self.head.classes

    @property
    def thresholds(self) -> dict[str, float]:
        return self.manifest.thresholds

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Stage 2's probabilities for prepared texts (``shared.serving.text``)."""
        return self.head.predict_proba(self.encoder.encode(texts))


def has_cascade(version: ModelVersion) -> bool:
    return CASCADE_ARTIFACT in version.artifacts


def load_stage2(registry: ModelRegistry, version: ModelVersion, *, threads: int = 1) -> Stage2:
    """``version``'s stage 2, every artifact verified against its registered SHA-256."""
    name = version.version
    manifest = CascadeManifest.from_bytes(registry.artifact_bytes(name, CASCADE_ARTIFACT))
    for artifact, digest in manifest.artifacts.items():
        if version.artifacts[artifact].sha256 != digest:
            raise ValueError(f"{name}: {artifact} is not the one its cascade manifest names")
    encoder = SentenceEncoder(
        registry.artifact_path(name, ENCODER_ARTIFACT),
        registry.artifact_bytes(name, TOKENIZER_ARTIFACT),
        max_tokens=manifest.max_tokens,
        intra_op_threads=threads,
    )
    head = HeadModel(registry.artifact_bytes(name, HEAD_ARTIFACT), manifest.classes)
    return Stage2(encoder=encoder, head=head, manifest=manifest)


@dataclass(slots=True)
class CascadeOutcome:
    """Every item's decision (``Decision.stage`` says which stage made it), stage 2's cost."""

    decisions: list[Decision]
    stage2_items: int = 0
    stage2_seconds: float = 0.0


def decide_cascade(
    texts: Sequence[str],
    stage1: list[Decision],
    stage2: Stage2 | None,
    approved_tags: Collection[str],
) -> CascadeOutcome:
    """Stage 1's decisions, with the ones it sends to review re-decided by stage 2.

    Without a stage 2 (none registered, or switched off) stage 1's decisions stand. Stage 2
    decides an item by its own rule (``route_decisions`` with its thresholds): sure, it is
    auto-accepted; unsure, it goes to review with stage 2's probabilities, the better
    guess to show a reviewer.
    """
    decisions = list(stage1)
    doubtful = [i for i, d in enumerate(stage1) if d.route == "review"]
    if stage2 is None or not doubtful:
        return CascadeOutcome(decisions)
    started = time.perf_counter()
    proba = stage2.predict_proba([texts[i] for i in doubtful])
    second = route_decisions(proba, stage2.classes, stage2.thresholds, approved_tags)
    for index, decision in zip(doubtful, second, strict=True):
        decisions[index] = dataclasses.replace(decision, stage=2)
    return CascadeOutcome(decisions, len(doubtful), time.perf_counter() - started)
