"""OpenTelemetry traces: one item's trace crosses every service through Kafka headers.

Each service calls :func:`configure_tracing` once at start-up. With an OTLP endpoint
(``TAGSTREAM_OTLP_ENDPOINT``, else ``OTEL_EXPORTER_OTLP_ENDPOINT``) it installs an SDK
tracer provider exporting over OTLP/HTTP in batches; without one nothing is installed and
every helper here returns at once: no spans, no headers, no cost beyond one check.

Where spans are made (the services call these helpers, not the SDK):

- HTTP: :class:`TracingMiddleware`, one server span per request (``POST /v1/items``),
  continuing a caller's ``traceparent`` header;
- produce: :func:`send_span` around each record a service sends, whose context goes into
  the record's ``traceparent`` header (:func:`inject_headers`);
- consume: :class:`BatchTrace`, one span per micro-batch linked to every record's trace,
  and one ``process <topic>`` span per record as a child of the context its producer
  sent, so each item's trace continues through the batch. An output keyed like an input
  record (the item id, on every topic of the pipeline) carries that record's context on;
  a record whose output is sent later (a review item labelled minutes after it was
  queued) keeps its :func:`traceparent_of` and sends under it with
  ``send_span(..., parent=traceparent_context(kept))``.

Spans name the service in their instrumentation scope (``tagstream.<service>``); each
process also names itself in the resource (``service.name``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.metrics import route_template

#: The W3C header names carried in HTTP requests and Kafka records.
TRACE_HEADERS = ("traceparent", "tracestate")
ITEM_ID = "tagstream.item_id"
#: Probes every few seconds are not traffic: no span (they are still counted in metrics).
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

Headers = list[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()
#: The provider the helpers use: None (tracing off) until configure_tracing or a test sets it.
_provider: trace.TracerProvider | None = None
#: The longest ``traceparent`` kept for later (version 00 is 55 characters).
MAX_TRACEPARENT = 128


# -- set-up ----------------------------------------------------------------------------


def otlp_endpoint(configured: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The OTLP/HTTP traces endpoint: the tagstream setting, else the OTel variables."""
    if configured:
        return configured.rstrip("/") + "/v1/traces"
    specific = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        return specific  # the standard says: used as is
    general = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return general.rstrip("/") + "/v1/traces" if general else None


def build_provider(service: str, endpoint: str) -> trace.TracerProvider:
    """An SDK provider naming ``service`` that exports to ``endpoint`` in batches."""
    # imported here: a process with tracing off never loads the SDK or the exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from shared.version import __version__

    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.version": __version__})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def configure_tracing(service: str, configured_endpoint: str | None) -> bool:
    """Export ``service``'s spans when an endpoint is set; True when tracing is on."""
    endpoint = otlp_endpoint(configured_endpoint)
    if endpoint is None:
        use_provider(None)
        return False
    provider = build_provider(service, endpoint)
    use_provider(provider)
    trace.set_tracer_provider(provider)  # for libraries that trace through the global API
    return True


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Make ``provider`` the one spans go to (None: tracing off). Tests pass an SDK one."""
    global _provider
    _provider = provider


def shutdown_tracing() -> None:
    """Flush spans still buffered (a service's last batch) before the process exits."""
    shutdown = getattr(_provider, "shutdown", None)
    if shutdown is not None:
        shutdown()


def enabled() -> bool:
    return _provider is not None


def tracer(service: str) -> Tracer:
    """The tracer of ``service`` (the no-op tracer while tracing is off)."""
    if _provider is None:
        return trace.NoOpTracer()
    return _provider.get_tracer(f"tagstream.{service}")


# -- propagation -----------------------------------------------------------------------


def inject_headers(ctx: Context | None = None) -> Headers:
    """The ``traceparent`` (and ``tracestate``) of ``ctx`` (default: the current span)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    return [(name, value.encode("ascii")) for name, value in carrier.items()]


def extract_context(headers: Sequence[tuple[str, bytes]] | None) -> Context | None:
    """The remote context a record's headers carry, None when they carry none."""
    carrier = {
        name: value.decode("latin-1")
        for name, value in headers or ()
        if name in TRACE_HEADERS and value is not None
    }
    if "traceparent" not in carrier:
        return None
    ctx = _PROPAGATOR.extract(carrier)
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def traceparent_context(traceparent: str | None) -> Context:
    """The context a stored ``traceparent`` names; an empty one (a new trace) for none."""
    if traceparent:
        ctx = extract_context([("traceparent", traceparent.encode("latin-1", "replace"))])
        if ctx is not None:
            return ctx
    return Context()


def traceparent_of(record: Any) -> str | None:
    """The ``traceparent`` to keep with a consumed record, to send under it later.

    Inside a :class:`BatchTrace`, the record's ``process`` span; else (tracing off here)
    the context its headers carry, so a label sent after tracing was turned on still
    joins the item's trace. None for a record without a valid one. Always normalised
    (``00-<trace>-<span>-<flags>``), never the raw header a producer wrote.
    """
    batch = _current_batch.get()
    span = batch.span_of(record) if batch is not None else None
    ctx = trace.set_span_in_context(span) if span is not None else extract_context(record.headers)
    if ctx is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    value = carrier.get("traceparent")
    return value if value and len(value) <= MAX_TRACEPARENT else None


# -- produce ---------------------------------------------------------------------------


@contextmanager
def send_span(
    service: str, topic: str, key: bytes | None, *, parent: Context | None = None
) -> Iterator[Headers | None]:
    """A producer span around one send; yields the headers to put on the record.

    The span is a child of ``parent`` when given (``Context()``: a new trace), else of the
    current span. Yields None while tracing is off (the record goes without headers).
    """
    if _provider is None:
        yield None
        return
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic,
    }
    if key is not None:
        attributes[ITEM_ID] = key.decode("utf-8", "replace")
    with tracer(service).start_as_current_span(
        f"send {topic}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
    ):
        yield inject_headers()


# -- consume ---------------------------------------------------------------------------


class BatchTrace:
    """The spans of one consumed micro-batch (see the module docstring).

    ``headers_for(key)`` gives an output keyed ``key`` the context of the record with the
    same key, so the item's trace goes on downstream.
    """

    def __init__(self, service: str, records: Sequence[Any]) -> None:
        self._tracer = tracer(service)
        self._spans: list[Span] = []
        self._items: dict[bytes, Span] = {}
        self._records: dict[int, Span] = {}
        self._batch: Span | None = None
        self._token: object | None = None
        self._current: Token[BatchTrace | None] | None = None
        if _provider is None:
            return
        started = time.time_ns()
        contexts = [(record, extract_context(record.headers)) for record in records]
        topics = sorted({record.topic for record in records})
        self._batch = self._tracer.start_span(
            f"{service} batch",
            kind=SpanKind.CONSUMER,
            start_time=started,
            links=[Link(trace.get_current_span(c).get_span_context()) for _, c in contexts if c],
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.batch.message_count": len(records),
                "messaging.destination.name": ",".join(topics),
            },
        )
        batch_link = [Link(self._batch.get_span_context())]
        for record, ctx in contexts:
            if ctx is None:
                continue  # untraced: nothing to continue
            span = self._tracer.start_span(
                f"process {record.topic}",
                context=ctx,
                kind=SpanKind.CONSUMER,
                start_time=started,
                links=batch_link,
                attributes=_record_attributes(record),
            )
            self._spans.append(span)
            self._records[id(record)] = span
            if record.key is not None:
                # one item on two topics of a batch (feedback): outputs follow the first
                self._items.setdefault(record.key, span)

    def __enter__(self) -> BatchTrace:
        self._current = _current_batch.set(self)
        if self._batch is not None:
            # the handler's own spans and log lines belong to the batch
            self._token = otel_context.attach(trace.set_span_in_context(self._batch))
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        if self._current is not None:
            _current_batch.reset(self._current)
            self._current = None
        for span in (*self._spans, *([self._batch] if self._batch else [])):
            if exc is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()

    @property
    def traced(self) -> bool:
        """Some record of the batch carried a trace context to continue."""
        return bool(self._spans)

    def span_of(self, record: Any) -> Span | None:
        """The ``process`` span of ``record`` (one of this batch's), None if untraced."""
        return self._records.get(id(record))

    def headers_for(self, key: bytes | None) -> Headers | None:
        """Headers continuing the trace of the input record keyed ``key`` (None if none)."""
        span = self._items.get(key) if key is not None else None
        if span is None:
            return None
        return inject_headers(trace.set_span_in_context(span))


#: The batch being handled, for :func:`traceparent_of` (asyncio.to_thread copies it along).
_current_batch: ContextVar[BatchTrace | None] = ContextVar("tagstream_batch", default=None)


def _record_attributes(record: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.kafka.offset": record.offset,
        "messaging.destination.partition.id": str(record.partition),
    }
    if record.key is not None:
        attributes[ITEM_ID] = record.key.decode("utf-8", "replace")
    return attributes


# -- HTTP ------------------------------------------------------------------------------


class TracingMiddleware:
    """A server span per HTTP request, continuing the caller's ``traceparent``.

    Named ``<METHOD> <route template>``; a 5xx answer (or an exception) marks it as an
    error. Pure ASGI; does nothing while tracing is off, nor for the probes.
    """

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _provider is None or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        headers = [(k.decode("latin-1"), v) for k, v in scope.get("headers", ())]
        method = scope["method"]
        with tracer(self.service).start_as_current_span(
            method,  # the route is known once the router chose one
            context=extract_context(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:

            async def record_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, record_status)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
