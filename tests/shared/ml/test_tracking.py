"""Experiment tracking: with MLFLOW_TRACKING_URI set, a training is one MLflow run, tagged
with the registry version, holding its params, metrics and the files a person opens.

Against a real MLflow file store in ``tmp_path``. Skipped only when the ``mlflow`` extra is
not installed (the dev lock installs it, so CI runs it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shared.ml import training
from shared.ml.tracking import VERSION_TAG, flatten, log_training_run
from shared.registry import ModelRegistry, ModelStatus
from shared.settings import Settings
from tests.fixtures.db import migrated


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'db.sqlite'}"),
    )


def test_nested_metrics_become_dotted_keys() -> None:
    nested = {"test": {"macro_f1": 0.9, "per_class": {"mlops": {"f1": 0.8}}}, "seed": 42}
    assert dict(flatten(nested)) == {
        "test.macro_f1": 0.9,
        "test.per_class.mlops.f1": 0.8,
        "seed": 42,
    }


def test_without_a_tracking_uri_nothing_is_logged(
    settings: Settings, tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    version = training.train(settings, data_location=str(tiny_dataset)).version
    assert log_training_run(version, {}, environ={}) is None


def test_a_training_is_one_mlflow_run_tagged_with_its_registry_version(
    settings: Settings, tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    store = f"file://{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    # MLflow 3 keeps the file store for local use behind this opt-in
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "tagstream-test")

    version = training.train(settings, data_location=str(tiny_dataset)).version
    assert version.status == ModelStatus.STABLE

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("tagstream-test")
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == version.version
    assert run.data.tags[VERSION_TAG] == version.version
    assert run.data.tags["tagstream.status"] == "stable"
    assert run.data.tags["tagstream.data_hash"] == version.data_hash
    assert run.data.params["seed"] == str(settings.seed)
    assert run.data.params["calibration_strategy"] == version.params["calibration_strategy"]
    numeric = {
        key: value
        for key, value in flatten(version.metrics)
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    assert numeric, "the registry version has no numeric metric"
    assert run.data.metrics == pytest.approx(numeric)

    logged = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"model.onnx", "model_card.md", "report.html", "report.json"} <= logged
    onnx = Path(client.download_artifacts(run.info.run_id, "model.onnx", str(tmp_path)))
    with ModelRegistry.open(settings) as registry:
        served = registry.artifact_bytes(version.version, "model.onnx")
    assert hashlib.sha256(onnx.read_bytes()).digest() == hashlib.sha256(served).digest()
