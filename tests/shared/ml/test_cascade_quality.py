"""The cascade with the real encoder (all-MiniLM-L6-v2) on the real dataset: the quality
targets of issue 13, measured out of fold and on the test split."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.ml import training
from shared.ml.cascade import encoder_folder
from shared.settings import Settings
from tests.fixtures.db import migrated

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        registry_dir=tmp_path / "registry",
        database_url=migrated(f"sqlite:///{tmp_path / 'db.sqlite'}"),
    )


def test_the_cascade_reaches_the_quality_targets(settings: Settings, dataset_path: Path) -> None:
    real = settings.model_copy(update={"encoder_dir": encoder_folder(None)})
    result = training.train(real, data_location=str(dataset_path))
    cascade = result.version.metrics["cascade"]
    print(cascade)  # the figures, with -s
    oof, test = cascade["out_of_fold"], cascade["test"]
    assert cascade["parity"]["encoder"] <= settings.parity_tolerance
    # Floors a little under what this cascade measured (docs/cascade.md: OOF F1 0.917,
    # precision 0.971, coverage 0.777; test F1 0.922): a regression fails here. Issue 13's
    # targets (coverage >= 0.85 at precision 0.97) are not yet reached; see the doc.
    assert oof["f1_weighted"] >= 0.90, oof
    assert oof["precision"] >= 0.96, oof
    assert oof["coverage"] >= 0.75, oof
    assert test["f1_weighted"] >= 0.90, test
    # stage 2 adds coverage over stage 1 alone at the same target precision
    assert oof["coverage"] > oof["stage1_coverage"], oof
    # stage 2 decides a real share of what stage 1 would send to people
    assert oof["stage2_coverage"] >= 0.05, oof
