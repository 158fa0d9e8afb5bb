"""The drift score's vocabulary comes from the registered vocabulary.json, without
scikit-learn, and equals the one the pipeline itself holds."""

from __future__ import annotations

from pathlib import Path

from services.feedback.drift import _vocabulary_from_pipeline, oov_share, vocabulary_of
from shared.ml.training import train
from shared.registry import ModelRegistry
from shared.serving.model_format import VOCABULARY_ARTIFACT
from shared.settings import Settings
from tests.fixtures.db import migrated
from tests.fixtures.imports import training_stack_after


def test_the_registered_vocabulary_is_the_pipelines_and_needs_no_training_stack(
    tmp_path: Path, tiny_dataset: Path
) -> None:
    settings = Settings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'tagstream.db'}"),
    )
    version = train(settings, data_location=str(tiny_dataset)).version
    assert VOCABULARY_ARTIFACT in version.artifacts
    with ModelRegistry.open(settings) as registry:
        vocabulary = vocabulary_of(registry, version)
        assert vocabulary == _vocabulary_from_pipeline(registry, version)
    assert vocabulary
    assert all(" " not in term for term in vocabulary)
    known = sorted(vocabulary)[0]
    assert oov_share([(f"{known} {known}", "")], vocabulary) == 0.0
    assert oov_share([(f"{known} zzzunseen", "")], vocabulary) == 0.5

    loaded = training_stack_after(
        "from services.feedback.drift import vocabulary_of",
        "from shared.registry import ModelRegistry",
        "from shared.settings import Settings",
        f"settings = Settings(environment='test', registry_dir={str(settings.registry_dir)!r}, "
        f"database_url={settings.database_url!r})",
        "with ModelRegistry.open(settings) as registry:",
        f"    assert vocabulary_of(registry, registry.get({version.version!r}))",
    )
    assert loaded == set()
