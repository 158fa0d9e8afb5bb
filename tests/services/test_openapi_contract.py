"""Every service's OpenAPI document: each operation has a summary a person wrote and
declares its error statuses with the one envelope (shared.http.errors.ErrorBody)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from tests.services.test_openapi_version import SERVICES

ENVELOPE = "#/components/schemas/ErrorBody"


def _operations(service: str) -> list[tuple[str, str, dict[str, Any]]]:
    settings_class = getattr(
        importlib.import_module(f"services.{service}.settings"), SERVICES[service]
    )
    app = importlib.import_module(f"services.{service}.app").create_app(
        settings_class(_env_file=None)
    )
    return [
        (method.upper(), path, operation)
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
    ]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_operation_has_a_written_summary_and_enveloped_errors(service: str) -> None:
    for method, path, operation in _operations(service):
        where = f"{service} {method} {path}"
        # FastAPI's default summary is the handler's name in title case
        default = operation["operationId"].split("_v1_")[0].replace("_", " ").title()
        assert operation.get("summary"), where
        assert operation["summary"] != default, where
        responses = operation["responses"]
        errors = {status for status in responses if status[0] in "45"}
        if operation.get("security"):
            assert "401" in errors, where
            if service != "review":  # machine keys: a review token is answered 403
                assert "403" in errors, where
        if "requestBody" in operation or operation.get("parameters"):
            assert "422" in errors, where
        for status in errors:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": ENVELOPE}, f"{where} {status}"
        for status in errors & {"429", "503"}:
            assert "Retry-After" in responses[status]["headers"], f"{where} {status}"


def test_every_http_service_but_the_classifier_has_operations() -> None:
    for service in ("ingest", "review", "feedback", "rollout"):
        assert _operations(service), service
    assert _operations("classifier") == []  # probes and /metrics only, outside the schema
