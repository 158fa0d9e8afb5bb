"""Logs: JSON or console lines, level setting obeyed, request and trace ids bound.

Each case runs in a fresh interpreter: logging configuration is process-wide.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap

import pytest
from pydantic import ValidationError

from shared.observability.logging import readable_line
from shared.settings import Settings

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    import structlog
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from shared.observability.logging import RequestIdMiddleware, configure_logging

    configure_logging("probe", sys.argv[1])
    log = structlog.get_logger("probe")
    log.debug("own_debug")
    log.info("own_info", item_id="item-1")
    log.warning("own_warning")
    logging.getLogger("aiokafka").info("library_info")
    logging.getLogger("aiokafka").warning("library_warning")

    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)

    @app.get("/work")
    async def work() -> dict[str, str]:
        structlog.get_logger("probe").warning("handled", item_id="item-2")
        return {"ok": "yes"}

    with TestClient(app) as client:
        given = client.get("/work", headers={"X-Request-ID": "req-from-caller"})
        made = client.get("/work")
        hostile = client.get("/work", headers={"X-Request-ID": "bad id\\twith spaces"})
    print("HEADERS " + " ".join(r.headers["X-Request-ID"] for r in (given, made, hostile)))
    """
)


def run(level: str) -> tuple[list[dict[str, object]], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, level], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    headers = lines[-1].removeprefix("HEADERS ").split()
    return [json.loads(line) for line in lines[:-1]], headers


def test_every_line_is_json_with_service_level_and_time() -> None:
    events, _ = run("DEBUG")
    assert [e["event"] for e in events[:5]] == [
        "own_debug",
        "own_info",
        "own_warning",
        "library_info",
        "library_warning",
    ]
    for event in events:
        assert event["service"] == "probe"
        assert {"level", "timestamp"} <= event.keys()
    assert events[1]["item_id"] == "item-1"
    assert events[3]["logger"] == "aiokafka"


def test_log_level_setting_filters_own_and_library_logs() -> None:
    events, _ = run("warning")
    names = [e["event"] for e in events]
    assert "own_debug" not in names
    assert "own_info" not in names
    assert "library_info" not in names
    assert {"own_warning", "library_warning", "handled"} <= set(names)


def test_request_id_is_bound_to_log_lines_and_returned() -> None:
    events, headers = run("INFO")
    handled = [e for e in events if e["event"] == "handled"]
    assert [e["request_id"] for e in handled] == headers
    assert headers[0] == "req-from-caller"
    assert len(headers[1]) == 32
    assert headers[2] != "bad id\twith spaces"
    assert all(e["item_id"] == "item-2" for e in handled)
    # the id belongs to its request only
    assert "request_id" not in next(e for e in events if e["event"] == "own_warning")


def test_log_level_setting_is_checked_and_case_insensitive() -> None:
    assert Settings(log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValidationError):
        Settings(log_level="LOUD")


CONSOLE_SCRIPT = textwrap.dedent(
    """
    import sys
    import structlog
    from shared.observability.logging import configure_logging

    configure_logging("probe", "INFO", None if sys.argv[1] == "default" else sys.argv[1])
    structlog.get_logger("probe").info("own_info", item_id="item-1")
    """
)


def run_console(fmt: str, *, stderr_is_terminal: bool) -> str:
    """What the script prints on stdout, its stderr a pseudo-terminal or a pipe."""
    if not stderr_is_terminal:
        done = subprocess.run(
            [sys.executable, "-c", CONSOLE_SCRIPT, fmt], capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.decode()
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "wb") as terminal:
            done = subprocess.run(
                [sys.executable, "-c", CONSOLE_SCRIPT, fmt],
                stdout=subprocess.PIPE,
                stderr=terminal,
                timeout=60,
            )
        errors = b"" if done.returncode == 0 else os.read(leader, 65536)
    finally:
        os.close(leader)
    assert done.returncode == 0, errors.decode(errors="replace")
    return done.stdout.decode()


def test_a_terminal_gets_readable_lines_by_default() -> None:
    out = run_console("default", stderr_is_terminal=True).strip()
    assert not out.startswith("{"), out
    # level, event and fields readable in one line (no colour codes: stdout is a pipe)
    assert "[info" in out
    assert "own_info" in out
    assert "item_id=item-1" in out
    assert "\x1b[" not in out


def test_anything_else_gets_json_by_default_and_either_on_request() -> None:
    assert json.loads(run_console("default", stderr_is_terminal=False))["event"] == "own_info"
    assert json.loads(run_console("json", stderr_is_terminal=True))["item_id"] == "item-1"
    assert "item_id=item-1" in run_console("console", stderr_is_terminal=False)


def test_log_format_setting_is_checked_and_blank_means_unset() -> None:
    assert Settings(log_format="JSON").log_format == "json"
    assert Settings(log_format=" ").log_format is None
    assert Settings().log_format is None
    with pytest.raises(ValidationError):
        Settings(log_format="xml")


TRACE_SCRIPT = textwrap.dedent(
    """
    import structlog
    from opentelemetry.sdk.trace import TracerProvider
    from shared.observability.logging import configure_logging

    configure_logging("probe", "INFO", "json")
    with TracerProvider().get_tracer("probe").start_as_current_span("work") as span:
        structlog.get_logger("probe").info("inside")
    structlog.get_logger("probe").info("outside")
    context = span.get_span_context()
    print(format(context.trace_id, "032x"), format(context.span_id, "016x"))
    """
)


def test_lines_in_a_span_carry_its_trace_and_span_ids() -> None:
    done = subprocess.run(
        [sys.executable, "-c", TRACE_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    *lines, ids = done.stdout.splitlines()
    inside, outside = (json.loads(line) for line in lines)
    assert [inside["trace_id"], inside["span_id"]] == ids.split()
    assert "trace_id" not in outside


def test_a_json_record_is_shown_as_a_console_line_and_other_lines_as_they_are() -> None:
    record = {
        "event": "item_accepted",
        "level": "info",
        "timestamp": "2026-01-01T00:00:00Z",
        "item_id": "item-1",
        "service": "ingest",
    }
    line = readable_line(json.dumps(record))
    assert line.startswith("2026-01-01T00:00:00Z [info")
    assert "item_accepted" in line
    assert "item_id=item-1" in line
    assert "\x1b[" not in line
    assert readable_line("plain text from uvicorn") == "plain text from uvicorn"
    assert readable_line("[1, 2]") == "[1, 2]"
