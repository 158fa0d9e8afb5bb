"""Public, immutable views of the registry: what services and tools receive and pass around."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

MODEL_ARTIFACT = "model.onnx"
CASCADE_ARTIFACT = "cascade.json"
"""A cascade's manifest (stage 2's thresholds, the digests of its encoder and head): with
it, a version's id covers both stages (``shared.registry.service.version_id``)."""


class ModelStatus(StrEnum):
    """Where a version stands in its rollout."""

    CANDIDATE = "candidate"
    CANARY = "canary"
    STABLE = "stable"
    ROLLED_BACK = "rolled_back"
    RETIRED = "retired"
    REJECTED = "rejected"
    """Failed the offline gate (see ``ModelVersion.gate``); it never took traffic."""


class ArtifactRef(BaseModel):
    """One file of a version, identified by its content."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="File name inside the version's folder, e.g. 'model.onnx'.")
    sha256: str = Field(description="Hex SHA-256 of the file's bytes.")
    size_bytes: int = Field(ge=0, description="File size in bytes.")


class ModelVersion(BaseModel):
    """A registered model version with its metadata, lineage and artifacts."""

    model_config = ConfigDict(frozen=True)

    version: str = Field(
        description="'v' + the first 12 hex digits of model.onnx's SHA-256 (with a cascade, "
        "of model.onnx's and cascade.json's)."
    )
    name: str = Field(description="Model name; the registry keeps versions per name.")
    status: ModelStatus
    created_at: AwareDatetime
    data_hash: str = Field(
        max_length=128, description="Hash of the training data the model was built from."
    )
    params: dict[str, Any] = Field(description="Training hyper-parameters.")
    metrics: dict[str, Any] = Field(description="Evaluation metrics.")
    thresholds: dict[str, float] = Field(description="Auto-accept threshold per class.")
    classes: list[str] = Field(description="Output classes, in the model's column order.")
    parent_version: str | None = Field(description="Version this one was meant to replace.")
    model_card: str = Field(description="Human-readable model card (Markdown).")
    artifacts: dict[str, ArtifactRef] = Field(description="Artifacts by file name.")
    gate: dict[str, Any] | None = Field(
        None,
        description="The offline gate's verdict ('passed', 'failed', 'not_run') and the "
        "paired figures behind it (shared.ml.gate); None for versions registered before it.",
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> ModelVersion:
        if MODEL_ARTIFACT not in self.artifacts:
            raise ValueError(f"artifacts must include {MODEL_ARTIFACT!r}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be unique")
        unknown = sorted(set(self.thresholds) - set(self.classes))
        if unknown:
            raise ValueError(f"thresholds given for classes the model lacks: {unknown}")
        if not all(math.isfinite(value) for value in self.thresholds.values()):
            # JSON (and so the database) has no infinity; leave a class out instead.
            raise ValueError("thresholds must be finite; omit a class to never auto-accept it")
        return self


class StatusChange(BaseModel):
    """One entry of a version's status audit trail."""

    model_config = ConfigDict(frozen=True)

    id: int
    version: str
    from_status: ModelStatus | None = Field(description="None for the registration itself.")
    to_status: ModelStatus
    changed_at: AwareDatetime
    reason: str


class TrafficSplit(BaseModel):
    """Which versions serve and how items are shared between them.

    ``canary_weight`` is the share of items (chosen by a hash of the item id) that the
    canary decides; in ``shadow`` mode the canary scores every item but decides none.
    """

    model_config = ConfigDict(frozen=True)

    stable: str | None = Field(None, description="The stable version, if any.")
    canary: str | None = Field(None, description="The canary version, if a rollout runs.")
    canary_weight: float = Field(0.0, ge=0, le=1, description="Share the canary decides.")
    shadow: bool = Field(False, description="The canary scores every item, decides none.")
    updated_at: AwareDatetime | None = Field(None, description="Last change of the split.")
