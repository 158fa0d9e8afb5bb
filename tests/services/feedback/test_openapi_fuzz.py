"""Schemathesis against the feedback API with its API key configured: real broker (the
report producer), SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from schemathesis.generation import GenerationMode

from services.feedback.app import create_app
from services.feedback.settings import FeedbackSettings
from shared.settings import Settings
from tests.services.feedback.test_api import AUTH, KEY
from tests.services.openapi_fuzz import MODES, fuzz, lifespan_running

pytestmark = pytest.mark.kafka


@pytest.fixture
def feedback_app(topics: Settings, migrated_database_url: str, tmp_path: Path) -> Iterator[FastAPI]:
    values = {
        **topics.model_dump(),
        "database_url": migrated_database_url,
        "registry_dir": tmp_path / "registry",
        "feedback_api_keys": KEY,
    }
    app = create_app(
        FeedbackSettings(**values), metrics_registry=CollectorRegistry(), monitor=False
    )
    with lifespan_running(app):
        yield app


@pytest.mark.parametrize("mode", MODES)
def test_no_input_reaches_a_server_error(feedback_app: FastAPI, mode: GenerationMode) -> None:
    fuzz(feedback_app, AUTH, mode, paths={"/v1/reports", "/v1/accuracy"})
