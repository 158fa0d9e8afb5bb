"""Every service's OpenAPI document shows the one tagstream version (shared.version)."""

from __future__ import annotations

import importlib

import pytest

from shared.version import __version__

SERVICES = {
    "ingest": "IngestSettings",
    "classifier": "ClassifierSettings",
    "review": "ReviewSettings",
    "feedback": "FeedbackSettings",
    "rollout": "RolloutSettings",
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_openapi_shows_the_package_version(service: str) -> None:
    settings_class = getattr(
        importlib.import_module(f"services.{service}.settings"), SERVICES[service]
    )
    create_app = importlib.import_module(f"services.{service}.app").create_app
    # create_app opens nothing (the lifespan does), so default settings are enough here
    app = create_app(settings_class(_env_file=None))
    assert app.openapi()["info"]["version"] == __version__
