"""Hyper-parameters of the tagging model: part of the model card and of the artifact hash."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    """TF-IDF features plus a linear classifier: strong, fast, exportable to ONNX."""

    model_config = ConfigDict(frozen=True)

    ngram_max: int = Field(1, ge=1, le=3, description="Longest word n-gram used as a feature.")
    min_df: int = Field(1, ge=1, description="Minimum documents a term must appear in.")
    max_features: int | None = Field(None, ge=1, description="Cap on the vocabulary size.")
    c: float = Field(10.0, gt=0, description="Inverse regularisation strength of the classifier.")
    class_weight: str | None = Field(
        "balanced", description="'balanced' reweights rare tags; None trains unweighted."
    )
    max_iter: int = Field(3000, ge=1, description="Solver iteration cap.")
