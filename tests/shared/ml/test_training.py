from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from shared.ml import training
from shared.ml.config import ModelConfig
from shared.ml.onnx_export import ParityError
from shared.registry import ModelRegistry, ModelStatus
from shared.settings import Settings
from tests.fixtures.data import synthetic_rows, write_rows
from tests.fixtures.db import migrated


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'db.sqlite'}"),
    )


def test_first_version_is_stable_and_has_every_artifact(
    settings: Settings, tiny_dataset: Path
) -> None:
    steps: list[str] = []
    result = training.train(settings, data_location=str(tiny_dataset), on_step=steps.append)
    assert steps == list(training.STEPS)
    version = result.version
    assert version.status == ModelStatus.STABLE
    assert set(version.artifacts) >= {
        "model.onnx",
        "pipeline.joblib",
        "report.json",
        "report.html",
        "confusion_matrix.png",
        "precision_coverage.png",
        "model_card.md",
        "splits.json",
        "encoder.onnx",
        "encoder-tokenizer.json",
        "head.onnx",
        "cascade.json",
    }
    with ModelRegistry.open(settings) as registry:
        onnx = registry.artifact_bytes(version.version, "model.onnx")
        manifest = registry.artifact_bytes(version.version, "cascade.json")
        splits = json.loads(registry.artifact_bytes(version.version, "splits.json"))
    stage1 = hashlib.sha256(onnx).hexdigest().encode()
    assert version.version == "v" + hashlib.sha256(stage1 + b"\n" + manifest).hexdigest()[:12]
    assert json.loads(manifest)["artifacts"]["head.onnx"] == version.artifacts["head.onnx"].sha256
    assert sum(len(ids) for ids in splits.values()) == 120
    assert set(version.thresholds) == set(settings.approved_tags)
    assert result.data.n_items == 120
    assert all(p.passed for p in result.parity.values())
    card = version.model_card
    assert version.data_hash in card
    assert version.version in card


def test_same_data_config_and_seed_give_the_same_version(
    settings: Settings, tiny_dataset: Path
) -> None:
    first = training.train(settings, data_location=str(tiny_dataset)).version
    again = training.train(settings, data_location=str(tiny_dataset)).version
    assert again.version == first.version
    assert again.artifacts["model.onnx"].sha256 == first.artifacts["model.onnx"].sha256


def test_new_data_registers_a_candidate_with_lineage(
    settings: Settings, tiny_dataset: Path, tmp_path: Path
) -> None:
    first = training.train(settings, data_location=str(tiny_dataset)).version
    more = write_rows(tmp_path / "more.csv", synthetic_rows(per_tag=40, seed=1))
    second = training.train(settings, data_location=str(more)).version
    assert second.status == ModelStatus.CANDIDATE
    assert second.parent_version == first.version
    assert second.data_hash != first.data_hash


def test_parity_gate_refuses_a_broken_export(
    settings: Settings, tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_export = training.export_onnx

    def broken_export(pipeline: object) -> bytes:
        # a different model than the one trained: same graph, other weights
        clf = pipeline[-1]  # type: ignore[index]
        clf.coef_ = clf.coef_[::-1].copy()
        try:
            return real_export(pipeline)
        finally:
            clf.coef_ = clf.coef_[::-1].copy()

    monkeypatch.setattr(training, "export_onnx", broken_export)
    with pytest.raises(ParityError):
        training.train(settings, data_location=str(tiny_dataset))
    with ModelRegistry.open(settings) as registry:
        assert registry.list_versions() == []


@pytest.mark.slow
def test_real_dataset_end_to_end(settings: Settings, dataset_path: Path) -> None:
    result = training.train(settings, data_location=str(dataset_path))
    report = result.report
    assert report.n_items == len(result.splits.test) >= 100
    # sane, not tuned: a TF-IDF linear model reaches ~0.85-0.9 on this data
    assert report.overall.f1_weighted > 0.8
    assert 0.5 < report.auto.coverage < 1.0
    assert report.auto.precision is not None
    assert report.auto.precision > 0.9
    for name, parity in result.parity.items():
        assert parity.label_mismatches == 0, name
        assert parity.max_abs_diff <= settings.parity_tolerance, name
    assert set(report.per_class) == set(settings.approved_tags)
    assert result.data.duplicates_dropped == 0


def test_every_version_is_checked_against_baselines_overfit_and_behaviour(
    settings: Settings, tiny_dataset: Path
) -> None:
    result = training.train(settings, data_location=str(tiny_dataset))
    checks = result.checks
    assert checks is not None
    assert [card.name for card in checks.baselines] == [
        "majority class",
        "keyword rules",
        "stage 1",
    ]
    assert {card.n for card in checks.baselines} == {len(result.splits.test)}
    stage_one = checks.baselines[-1]
    assert stage_one.f1_weighted == pytest.approx(result.report.overall.f1_weighted)
    assert stage_one.auto_coverage == pytest.approx(result.report.auto.coverage)
    assert checks.overfit.passed
    assert len(checks.behaviour.results) > 0
    with ModelRegistry.open(settings) as registry:
        version = registry.get(result.version.version)
        report = json.loads(registry.artifact_bytes(version.version, "report.json"))
        html = registry.artifact_bytes(version.version, "report.html").decode()
    assert report["checks"]["overfit"]["passed"] is True
    assert [s["name"] for s in report["scorecards"]] == [
        "majority class",
        "keyword rules",
        "stage 1",
    ]
    assert "Can it overfit? passed" in html
    assert "Baselines and model on the test split" in html
    assert version.metrics["checks"]["behaviour"]["cases"] == len(checks.behaviour.results)
    assert "## Baselines on the test split" in version.model_card
    assert "Can it overfit: **passed**" in version.model_card
    assert "hyperparameters_set" not in version.params  # all defaults


def test_a_pipeline_that_cannot_overfit_is_reported_loudly_not_refused(
    settings: Settings, tiny_dataset: Path
) -> None:
    config = ModelConfig(max_features=1, c=0.5)
    result = training.train(settings, data_location=str(tiny_dataset), config=config)
    assert result.checks is not None
    assert not result.checks.overfit.passed
    assert any("can-it-overfit FAILED" in p for p in result.checks.problems)
    version = result.version
    assert version.status == ModelStatus.STABLE  # registered all the same
    assert version.params["max_features"] == 1
    assert version.params["c"] == 0.5
    assert version.params["hyperparameters_set"] == ["c", "max_features"]
    assert "Can it overfit: **FAILED**" in version.model_card
    assert "| c | `0.5` |" in version.model_card
    with ModelRegistry.open(settings) as registry:
        html = registry.artifact_bytes(version.version, "report.html").decode()
        report = json.loads(registry.artifact_bytes(version.version, "report.json"))
    assert "Problems found" in html
    assert "Can it overfit? FAILED" in html
    assert any("can-it-overfit FAILED" in p for p in report["problems"])
