"""Structured JSON logs (structlog), one line per event, with the service and ids bound.

Every process calls :func:`configure_logging` once at start-up: tagstream's own loggers and
the libraries' stdlib loggers (uvicorn, aiokafka, alembic) all write one JSON object per
line to stdout, filtered at ``TAGSTREAM_LOG_LEVEL``. HTTP services add
:class:`RequestIdMiddleware` so that every line logged while a request is handled carries
its ``request_id``; code handling one item binds ``item_id`` the same way
(``structlog.contextvars.bound_contextvars(item_id=...)``) or passes it as a field.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
# An id chosen by a caller is kept only when it is short and plain: it ends up in logs.
_ACCEPTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stdout for ``service``; stdlib loggers (uvicorn, aiokafka) included."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        # a processor, not a context variable: threads started by libraries (and the
        # event loops they run) do not inherit context variables
        _add_service(service),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
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
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    structlog.contextvars.clear_contextvars()


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
