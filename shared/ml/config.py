"""Hyper-parameters of the tagging model: part of the model card and of the artifact hash.

Set from the CLI (``tagstream model train --param c=2.0``) or a TOML/JSON file
(``--config FILE``: its top level or its ``[model]`` table); :func:`load_model_config`
turns either into a :class:`ModelConfig` or a :class:`ConfigError` naming every bad entry.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CLASS_WEIGHTS = ("balanced",)
_NONE_WORDS = ("none", "null")


class ModelConfig(BaseModel):
    """TF-IDF features plus a linear classifier: strong, fast, exportable to ONNX."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ngram_max: int = Field(1, ge=1, le=3, description="Longest word n-gram used as a feature.")
    min_df: int = Field(1, ge=1, description="Minimum documents a term must appear in.")
    max_features: int | None = Field(None, ge=1, description="Cap on the vocabulary size.")
    c: float = Field(10.0, gt=0, description="Inverse regularisation strength of the classifier.")
    class_weight: str | None = Field(
        "balanced", description="'balanced' reweights rare tags; None trains unweighted."
    )
    max_iter: int = Field(3000, ge=1, description="Solver iteration cap.")

    @field_validator("class_weight")
    @classmethod
    def _known_class_weight(cls, value: str | None) -> str | None:
        if value is not None and value not in CLASS_WEIGHTS:
            raise ValueError(f"must be one of {', '.join(CLASS_WEIGHTS)} or none")
        return value


class ConfigError(ValueError):
    """Hyper-parameters that cannot be used; the message names each bad one."""


def load_model_config(file: Path | None = None, params: Sequence[str] = ()) -> ModelConfig:
    """Defaults, then ``file``'s values, then each ``NAME=VALUE`` of ``params``."""
    values: dict[str, Any] = dict(read_config_file(file)) if file is not None else {}
    values |= parse_params(params)
    return model_config_from(values)


def read_config_file(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            raise ConfigError(f"config file {path} must end in .toml or .json")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {path.suffix[1:]}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of hyper-parameters")
    table = data.get("model", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [model] must be a table of hyper-parameters")
    return table


def parse_params(params: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs; ``none``/``null`` is None, other values are validated later."""
    values: dict[str, Any] = {}
    for param in params:
        name, sep, value = param.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param {param!r}: expected NAME=VALUE, e.g. c=2.0")
        raw = value.strip()
        values[name.strip()] = None if raw.lower() in _NONE_WORDS else raw
    return values


def model_config_from(values: Mapping[str, Any]) -> ModelConfig:
    known = list(ModelConfig.model_fields)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown hyper-parameter(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    try:
        return ModelConfig(**values)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("invalid hyper-parameter(s): " + "; ".join(problems)) from exc
