"""Property-based fuzzing of the OpenAPI schema: no input may produce a 5xx, and every
answer matches the documented status codes and bodies. Real broker, SQLite."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import get_client, shutdown_lifespans
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.ingest.app import create_app
from shared.settings import Settings
from tests.services.ingest.conftest import AUTH, ingest_settings

pytestmark = pytest.mark.kafka
EXAMPLES = 100


@pytest.fixture
def fuzzed_app(topics: Settings) -> Iterator[FastAPI]:
    app = create_app(ingest_settings(topics))
    # schemathesis runs the lifespan in its own event-loop thread; start it now and
    # wait for the producer, so that "not connected yet" 503s do not count as findings
    with get_client(app) as client:
        deadline = time.monotonic() + 20
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "ingest did not become ready"
            time.sleep(0.1)
    yield app
    shutdown_lifespans()


@pytest.fixture
def ingest_schema(fuzzed_app: FastAPI) -> BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# schemathesis.pytest.from_fixture does not work with pytest 9 (it reads the removed
# Item._nodeid), so the strategies of each operation are driven by hypothesis directly.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_reaches_a_server_error(ingest_schema: BaseSchema, mode: GenerationMode) -> None:
    operations = [result.ok() for result in ingest_schema.get_all_operations()]
    assert {op.path for op in operations} == {"/v1/items", "/v1/items:batch"}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=AUTH)
            case.validate_response(response, checks=CHECKS)

        call()
