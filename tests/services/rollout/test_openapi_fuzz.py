"""Schemathesis against the rollout API with an admin key configured: real broker (model
events), a registry with candidates, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from schemathesis.generation import GenerationMode

from services.rollout.app import create_app
from services.rollout.settings import RolloutSettings
from shared.registry import ModelRegistry
from shared.settings import Settings
from tests.services.openapi_fuzz import MODES, fuzz, lifespan_running

pytestmark = pytest.mark.kafka
KEY = "rollout-admin-key-0123456789"
PATHS = {"/v1/rollouts", "/v1/rollouts/pause", "/v1/rollouts/resume", "/v1/rollouts/abort"}


@pytest.fixture
def rollout_app(topics: Settings, migrated_database_url: str, tmp_path: Path) -> Iterator[FastAPI]:
    values = {
        **topics.model_dump(),
        "database_url": migrated_database_url,
        "registry_dir": tmp_path / "registry",
        "rollout_admin_keys": (KEY,),
    }
    settings = RolloutSettings(**values)
    with ModelRegistry.open(settings) as registry:
        for n in (1, 2, 3):
            registry.register(
                artifacts={"model.onnx": f"model-{n}".encode()},
                data_hash="d" * 64,
                params={},
                metrics={},
                thresholds={"mlops": 0.9},
                classes=["mlops", "other"],
                model_card="#",
            )
    app = create_app(settings, metrics_registry=CollectorRegistry())
    with lifespan_running(app):
        yield app


@pytest.mark.parametrize("mode", MODES)
def test_no_input_reaches_a_server_error(rollout_app: FastAPI, mode: GenerationMode) -> None:
    fuzz(rollout_app, {"Authorization": f"Bearer {KEY}"}, mode, paths=PATHS)
