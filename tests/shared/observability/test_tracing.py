"""Tracing helpers: off costs nothing, a batch continues each record's trace, OTLP export.

The export is checked against a real HTTP receiver on a free port, in a fresh interpreter
(the SDK's provider is process-wide once set).
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import ClassVar

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from shared.http.instrument import instrument
from shared.kafka.batch import Output, continue_traces
from shared.observability.health import probes_router
from shared.observability.tracing import (
    BatchTrace,
    extract_context,
    otlp_endpoint,
    send_span,
    traceparent_context,
    traceparent_of,
    tracer,
)
from tests.fixtures.tracing import service_of, spans  # noqa: F401  (fixture)


def record(key: bytes | None, headers: list[tuple[str, bytes]], offset: int = 0) -> ConsumerRecord:
    return ConsumerRecord(
        topic="content.raw",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=b"{}",
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=2,
        headers=tuple(headers),
    )


def test_the_endpoint_comes_from_the_setting_then_the_otel_variables() -> None:
    assert otlp_endpoint("http://collector:4318/", {}) == "http://collector:4318/v1/traces"
    general = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"}
    assert otlp_endpoint(None, general) == "http://env:4318/v1/traces"
    specific = {**general, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/custom"}
    assert otlp_endpoint(None, specific) == "http://t:4318/custom"
    assert otlp_endpoint("http://setting:4318", specific) == "http://setting:4318/v1/traces"
    assert otlp_endpoint(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": " "}) is None
    assert otlp_endpoint(None, {}) is None


def test_while_off_nothing_is_recorded_and_records_carry_no_headers() -> None:
    with send_span("ingest", "content.raw", b"item-1") as headers:
        assert headers is None
    parent = [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
    with BatchTrace("classifier", [record(b"item-1", parent)]) as batch:
        assert not batch.traced
        assert batch.headers_for(b"item-1") is None
    assert not tracer("ingest").start_span("x").get_span_context().is_valid


def test_a_batch_continues_each_records_trace_into_its_outputs(
    spans: InMemorySpanExporter,  # noqa: F811
) -> None:
    sent: dict[bytes, list[tuple[str, bytes]]] = {}
    for key in (b"a", b"b"):
        with send_span("ingest", "content.raw", key) as headers:
            assert headers is not None
            sent[key] = headers
    records = [
        record(b"a", sent[b"a"], 0),
        record(b"b", sent[b"b"], 1),
        record(b"untraced", [], 2),
        record(None, [], 3),
    ]
    with BatchTrace("classifier", records) as batch:
        outputs = continue_traces(
            batch,
            [
                Output("content.classified", b"a", b"{}"),
                Output("content.review", b"b", b"{}", [("x-other", b"kept")]),
                Output("content.classified", b"untraced", b"{}"),
            ],
        )

    finished = {span.name + ":" + service_of(span): span for span in spans.get_finished_spans()}
    send_a = next(
        s
        for s in spans.get_finished_spans()
        if s.attributes["tagstream.item_id"] == "a" and s.name == "send content.raw"
    )
    process = [s for s in spans.get_finished_spans() if s.name == "process content.raw"]
    assert sorted(s.attributes["tagstream.item_id"] for s in process) == ["a", "b"]
    process_a = next(s for s in process if s.attributes["tagstream.item_id"] == "a")
    # the classifier's span for item a is a child of ingest's send span, in its trace
    assert process_a.context.trace_id == send_a.context.trace_id
    assert process_a.parent is not None
    assert process_a.parent.span_id == send_a.context.span_id
    assert service_of(process_a) == "classifier"
    # the batch links to every traced record's context
    batch_span = finished["classifier batch:classifier"]
    assert len(batch_span.links) == 2
    # outputs keyed like a traced record carry the record's process span on
    continued = extract_context(outputs[0].headers)
    assert continued is not None
    carried = trace.get_current_span(continued).get_span_context()
    assert (carried.trace_id, carried.span_id) == (
        process_a.context.trace_id,
        process_a.context.span_id,
    )
    assert outputs[1].headers is not None
    assert outputs[1].headers[0] == ("x-other", b"kept")
    assert outputs[2].headers is None


TRACEPARENT = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"


def test_a_kept_traceparent_is_the_records_process_span_or_its_valid_header(
    spans: InMemorySpanExporter,  # noqa: F811
) -> None:
    with send_span("classifier", "review.requests", b"a") as headers:
        assert headers is not None
    traced = record(b"a", headers)
    with BatchTrace("review", [traced, record(b"b", [])]) as batch:
        kept = traceparent_of(traced)
        assert traceparent_of(record(b"b", [])) is None
        assert batch.span_of(traced) is not None
    [process] = [s for s in spans.get_finished_spans() if s.name == "process content.raw"]
    assert kept is not None
    assert kept.rsplit("-", 1)[0] == (
        f"00-{process.context.trace_id:032x}-{process.context.span_id:016x}"
    )
    # outside a batch (tracing off in the consumer): the header's context, normalised
    assert traceparent_of(record(b"c", [("traceparent", TRACEPARENT.upper().encode())])) == (
        TRACEPARENT
    )
    for bad in (b"garbage", b"00-" + b"0" * 32 + b"-" + b"2" * 16 + b"-01", b"x" * 10_000):
        assert traceparent_of(record(b"d", [("traceparent", bad)])) is None


def test_a_send_goes_under_a_kept_traceparent_or_starts_a_new_trace(
    spans: InMemorySpanExporter,  # noqa: F811
) -> None:
    with tracer("review").start_as_current_span("unrelated"):
        with send_span(
            "review", "feedback.labels", b"a", parent=traceparent_context(TRACEPARENT)
        ) as headers:
            assert headers is not None
        with send_span("review", "feedback.labels", b"b", parent=traceparent_context(None)):
            pass
    by_item = {
        s.attributes["tagstream.item_id"]: s
        for s in spans.get_finished_spans()
        if s.name == "send feedback.labels"
    }
    assert by_item["a"].context.trace_id == int("1" * 32, 16)
    assert by_item["a"].parent is not None
    assert by_item["a"].parent.span_id == int("2" * 16, 16)
    assert by_item["b"].parent is None  # a root: not under the unrelated current span
    carried = extract_context(headers)
    assert carried is not None
    assert trace.get_current_span(carried).get_span_context().span_id == (
        by_item["a"].context.span_id
    )
    assert traceparent_context("not a traceparent") == traceparent_context(None)


def test_a_failed_batch_marks_its_spans_as_errors(spans: InMemorySpanExporter) -> None:  # noqa: F811
    with send_span("ingest", "content.raw", b"a") as headers:
        assert headers is not None
    with pytest.raises(RuntimeError), BatchTrace("review", [record(b"a", headers)]):
        raise RuntimeError("database down")
    failed = [s for s in spans.get_finished_spans() if s.name != "send content.raw"]
    assert len(failed) == 2
    assert all(not s.status.is_ok for s in failed)


async def test_an_http_request_is_a_server_span_continuing_the_callers_trace(
    spans: InMemorySpanExporter,  # noqa: F811
) -> None:
    app = FastAPI()

    @app.get("/v1/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @app.post("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("handler bug")

    app.include_router(probes_router(_ready, CollectorRegistry()))
    instrument(app, "probe", CollectorRegistry())
    caller = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/v1/items/42", headers={"traceparent": caller})
        await client.post("/v1/boom")
        await client.get("/healthz")

    get, boom_span = spans.get_finished_spans()
    assert get.name == "GET /v1/items/{item_id}"
    assert get.kind is SpanKind.SERVER
    assert get.attributes is not None
    assert get.attributes["http.response.status_code"] == 200
    assert format(get.context.trace_id, "032x") == "ab" * 16
    assert get.parent is not None
    assert format(get.parent.span_id, "016x") == "cd" * 8
    assert boom_span.name == "POST /v1/boom"
    assert not boom_span.status.is_ok  # the probe made no span at all


async def _ready() -> dict[str, bool]:
    return {"fine": True}


class Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


EXPORT_SCRIPT = textwrap.dedent(
    """
    import sys
    from shared.observability.tracing import (
        configure_tracing, send_span, shutdown_tracing, tracer,
    )

    assert configure_tracing("ingest", sys.argv[1])
    with tracer("ingest").start_as_current_span("POST /v1/items"):
        with send_span("ingest", "content.raw", b"item-1"):
            pass
    shutdown_tracing()
    """
)


def test_spans_are_exported_over_otlp_http_when_an_endpoint_is_set(receiver: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", EXPORT_SCRIPT, receiver], capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    [(path, content_type, body)] = Receiver.received
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    [resource] = request.resource_spans
    attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert attributes["service.name"] == "ingest"
    names = {s.name for scope in resource.scope_spans for s in scope.spans}
    assert names == {"POST /v1/items", "send content.raw"}


def test_without_an_endpoint_configure_leaves_tracing_off() -> None:
    script = (
        "from shared.observability.tracing import configure_tracing, enabled\n"
        "assert configure_tracing('ingest', None) is False and not enabled()\n"
        "import sys; assert 'opentelemetry.sdk.trace' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
