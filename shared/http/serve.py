"""``serve()``: the one entry point of every ``python -m services.<name>``.

Reads the settings once, turns a bad setting into a one-line exit that names the
variable (``ingest: refusing to start, invalid settings: TAGSTREAM_INGEST_PORT: ...``,
exit code 2, no traceback), configures logging and tracing and runs uvicorn.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import uvicorn
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from shared.observability.logging import configure_logging
from shared.observability.tracing import configure_tracing, shutdown_tracing
from shared.settings_errors import settings_problems

#: Exit code of a process refusing to start on invalid settings (as argparse's usage errors).
INVALID_SETTINGS_EXIT_CODE = 2

S = TypeVar("S", bound=BaseSettings)


def invalid_settings_message(service: str, exc: ValidationError, env_prefix: str) -> str:
    """One line naming each bad variable and why: what an operator reads in a crash loop."""
    return f"{service}: refusing to start, invalid settings: {settings_problems(exc, env_prefix)}"


def read_settings(service: str, settings_class: type[S]) -> S:
    """``settings_class()`` from the environment, or exit with one line on stderr."""
    try:
        return settings_class()
    except ValidationError as exc:
        prefix = str(settings_class.model_config.get("env_prefix", ""))
        _refuse(invalid_settings_message(service, exc, prefix))


def _refuse(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(INVALID_SETTINGS_EXIT_CODE)


def serve(
    service: str,
    settings_class: type[S],
    create_app: Callable[[S], Any],
    *,
    host_field: str,
    port_field: str,
    shutdown_timeout_field: str | None = None,
) -> None:
    """Read settings, configure logs and traces, serve ``create_app(settings)`` until SIGTERM.

    ``shutdown_timeout_field`` names the setting the lifespan waits for background work
    on shutdown; uvicorn then waits a second longer for open connections, so the
    lifespan's own timeout is the one that decides.
    """
    settings = read_settings(service, settings_class)
    configure_logging(
        service, getattr(settings, "log_level", "INFO"), getattr(settings, "log_format", None)
    )
    configure_tracing(service, getattr(settings, "otlp_endpoint", None))
    graceful: int | None = None
    if shutdown_timeout_field is not None:
        graceful = int(getattr(settings, shutdown_timeout_field)) + 1
    uvicorn.run(
        create_app(settings),
        host=getattr(settings, host_field),
        port=getattr(settings, port_field),
        log_config=None,  # keep the handler configure_logging installed
        # each service logs what matters per request itself; request counts and statuses
        # are in its metrics, and probes every few seconds are not news
        access_log=False,
        timeout_graceful_shutdown=graceful,
    )
    shutdown_tracing()  # export the spans still buffered
