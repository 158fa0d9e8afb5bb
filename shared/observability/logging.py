"""Structured logs (structlog), one line per event, with the service and ids bound.

Every process calls :func:`configure_logging` once at start-up: tagstream's own loggers and
the libraries' stdlib loggers (uvicorn, aiokafka, alembic) all write one line per event to
stdout, filtered at ``TAGSTREAM_LOG_LEVEL``, in ``TAGSTREAM_LOG_FORMAT``: ``json`` (one
object per line, what collectors parse; the default when stderr is not a terminal) or
``console`` (aligned and coloured for a person; the default in a terminal). Lines written
inside a traced span carry its ``trace_id`` and ``span_id``. HTTP services add
:class:`RequestIdMiddleware` so that every line logged while a request is handled carries
its ``request_id``; code handling one item binds ``item_id`` the same way
(``structlog.contextvars.bound_contextvars(item_id=...)``) or passes it as a field.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from typing import Literal, TextIO

import structlog
from opentelemetry import trace
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
# An id chosen by a caller is kept only when it is short and plain: it ends up in logs.
_ACCEPTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


LogFormat = Literal["console", "json"]


def default_format(stderr: TextIO | None = None) -> LogFormat:
    """``console`` when stderr is a terminal (a person is watching), ``json`` otherwise."""
    stream = stderr if stderr is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "console" if isatty is not None and isatty() else "json"


def configure_logging(service: str, level: str = "INFO", fmt: LogFormat | None = None) -> None:
    """Log lines on stdout for ``service``; stdlib loggers (uvicorn, aiokafka) included.

    ``fmt`` None picks :func:`default_format`.
    """
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    fmt = fmt or default_format()
    if fmt not in ("console", "json"):
        raise ValueError(f"unknown log format {fmt!r}")
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        # a processor, not a context variable: threads started by libraries (and the
        # event loops they run) do not inherit context variables
        _add_service(service),
        _add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[structlog.typing.Processor]
    if fmt == "json":
        renderer = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # the console renderer prints tracebacks itself (pretty, not as a JSON string)
        renderer = [structlog.dev.ConsoleRenderer(colors=_colours(sys.stdout))]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    structlog.contextvars.clear_contextvars()


def readable_line(line: str) -> str:
    """A JSON log line as the console format shows it; any other line as it is.

    For a process showing other processes' JSON logs to a person (``tagstream up``): their
    log files stay JSON, the terminal gets lines a person reads.
    """
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "event" not in record:
        return line
    return str(_PLAIN_CONSOLE(None, "", record))


_PLAIN_CONSOLE = structlog.dev.ConsoleRenderer(colors=False)


def _colours(stream: TextIO) -> bool:
    """Colour codes only where a terminal shows them (stdout may still be a file)."""
    isatty = getattr(stream, "isatty", None)
    return isatty is not None and bool(isatty())


def _add_trace_ids(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """The current span's ids (hex, as trace back-ends show them), when there is one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def _add_service(service: str) -> structlog.typing.Processor:
    def add(
        logger: object, method: str, event: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        event.setdefault("service", service)
        return event

    return add


class RequestIdMiddleware:
    """Bind ``request_id`` to every log line of an HTTP request and answer it as a header.

    The caller's ``X-Request-ID`` is reused when it is a plain token (so one id follows a
    request across services); otherwise a fresh one is made. Pure ASGI, so streaming
    responses and the lifespan are untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


def _request_id(scope: Scope) -> str:
    wanted = REQUEST_ID_HEADER.lower().encode()
    for name, value in scope.get("headers", ()):
        if name.lower() == wanted:
            candidate = value.decode("latin-1")
            if _ACCEPTED_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex
