"""Schemathesis against a service's own OpenAPI, in-process with its lifespan running:
no input may produce a 5xx, and every answer must match a status, content type and schema
the document declares. Bounded by ``examples`` per operation and generation mode."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import get_client, shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


@contextmanager
def lifespan_running(app: FastAPI, ready_path: str = "/readyz") -> Iterator[FastAPI]:
    """``app`` with its lifespan started in schemathesis' own event-loop thread, ready."""
    with get_client(app) as client:
        deadline = time.monotonic() + 30
        while client.get(ready_path).status_code != 200:
            assert time.monotonic() < deadline, f"not ready: {client.get(ready_path).text}"
            time.sleep(0.1)
    try:
        yield app
    finally:
        shutdown_lifespans()


def fuzz(
    app: FastAPI,
    headers: Mapping[str, str],
    mode: GenerationMode,
    *,
    paths: set[str],
    examples: int = 50,
) -> None:
    """Every operation of ``app``'s OpenAPI, called ``examples`` times in ``mode``."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == paths
    for operation in operations:
        raw = operation.definition.raw
        if mode is GenerationMode.NEGATIVE and not (
            raw.get("parameters") or raw.get("requestBody") or raw.get("security")
        ):
            continue  # nothing a client sends can be wrong

        # schemathesis.pytest.from_fixture does not work with pytest 9 (it reads the
        # removed Item._nodeid), so each operation's strategy is driven by hypothesis.
        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=dict(headers))
            case.validate_response(response, checks=CHECKS)

        with warnings.catch_warnings():
            # The app's background tasks (consumer backoff, aiokafka) draw from the global
            # random in their own thread while hypothesis generates a case; it takes that
            # for a strategy using random. The cases do not depend on it.
            warnings.filterwarnings(
                "ignore", message="Do not use the `random` module inside strategies"
            )
            call()
