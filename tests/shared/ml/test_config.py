"""Hyper-parameters from the CLI and from TOML/JSON files, with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.ml.config import ConfigError, ModelConfig, load_model_config


def test_defaults_without_anything() -> None:
    assert load_model_config() == ModelConfig()
    assert load_model_config().model_fields_set == set()


def test_params_are_parsed_and_validated() -> None:
    config = load_model_config(params=["c=2.5", "ngram_max=2", "max_features=none"])
    assert (config.c, config.ngram_max, config.max_features) == (2.5, 2, None)
    assert config.model_fields_set == {"c", "ngram_max", "max_features"}
    assert load_model_config(params=["class_weight=NULL"]).class_weight is None


def test_toml_model_table_then_params_override(tmp_path: Path) -> None:
    path = tmp_path / "hp.toml"
    path.write_text('[model]\nc = 0.5\nmin_df = 2\nclass_weight = "balanced"\n')
    config = load_model_config(path, ["c=3"])
    assert (config.c, config.min_df, config.class_weight) == (3.0, 2, "balanced")


def test_json_top_level(tmp_path: Path) -> None:
    path = tmp_path / "hp.json"
    path.write_text(json.dumps({"max_iter": 50, "max_features": None}))
    config = load_model_config(path)
    assert (config.max_iter, config.max_features) == (50, None)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["gamma=1"], "unknown hyper-parameter(s) gamma; known: ngram_max"),
        (["c=-1"], "c='-1': Input should be greater than 0"),
        (["c=lots"], "c='lots': Input should be a valid number"),
        (["ngram_max=2.5"], "ngram_max='2.5'"),
        (["ngram_max=4"], "less than or equal to 3"),
        (["class_weight=heavy"], "must be one of balanced or none"),
        (["c"], "expected NAME=VALUE"),
        (["=2"], "expected NAME=VALUE"),
    ],
)
def test_bad_params_are_named(params: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_model_config(params=params)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("hp.yaml", "c: 1", "must end in .toml or .json"),
        ("hp.toml", "c = ", "is not valid toml"),
        ("hp.json", "{", "is not valid json"),
        ("hp.json", "[1, 2]", "must hold a table"),
        ("hp.toml", "model = 3", "[model] must be a table"),
        ("hp.toml", "[model]\nC = 1.0", "unknown hyper-parameter(s) C"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_model_config(path)
    assert message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_model_config(tmp_path / "nope.toml")
