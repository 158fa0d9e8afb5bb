"""PrometheusClient on canned HTTP answers, then client and analysis against a real server."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from services.rollout.analysis import (
    CHECKS,
    AnalysisConfig,
    CheckResult,
    analyse,
    overall_verdict,
)
from services.rollout.prometheus import PrometheusClient, PrometheusError, Sample, promql_string
from tagstream.local.broker import free_port
from tests.services.rollout.helpers import (
    SCENARIOS,
    WINDOW_SECONDS,
    PrometheusServer,
    Scenario,
    scraped,
)


def canned(handler: Callable[[httpx.Request], httpx.Response]) -> PrometheusClient:
    transport = httpx.MockTransport(handler)
    return PrometheusClient(
        "http://prometheus:9090/", client=httpx.AsyncClient(transport=transport)
    )


def ok(result_type: str, result: object) -> httpx.Response:
    return httpx.Response(
        200, json={"status": "success", "data": {"resultType": result_type, "result": result}}
    )


async def test_vector_with_nan_and_infinities() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(
            "vector",
            [
                {"metric": {"tag": "a"}, "value": [1.5, "3"]},
                {"metric": {"tag": "b"}, "value": [1.5, "NaN"]},
                {"metric": {"tag": "c"}, "value": [1.5, "+Inf"]},
                {"metric": {"tag": "d"}, "value": [1.5, "-Inf"]},
            ],
        )

    samples = await canned(handler).query('sum by (tag) (x{a="b"})')

    assert samples[0] == Sample({"tag": "a"}, 3.0)
    assert math.isnan(samples[1].value)
    assert [s.value for s in samples[2:]] == [math.inf, -math.inf]
    request = seen[0]
    assert (request.method, request.url.path) == ("POST", "/api/v1/query")
    assert httpx.QueryParams(request.content.decode())["query"] == 'sum by (tag) (x{a="b"})'


async def test_scalar_is_one_sample_without_labels() -> None:
    client = canned(lambda _: ok("scalar", [1.5, "0.25"]))
    assert await client.query("scalar(x)") == [Sample({}, 0.25)]


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(
                400,
                json={"status": "error", "errorType": "bad_data", "error": "parse error"},
            ),
            "HTTP 400: bad_data: parse error",
        ),
        (httpx.Response(503, text="Service Unavailable"), "HTTP 503: Service Unavailable"),
        (httpx.Response(200, text="<html>proxy</html>"), "not JSON"),
        (
            httpx.Response(200, json={"status": "error", "errorType": "timeout", "error": "x"}),
            "status 'error': timeout: x",
        ),
        (httpx.Response(200, json={"status": "success"}), "no 'data'"),
        (ok("matrix", []), "unsupported result type 'matrix'"),
        (ok("vector", [{"metric": {}, "value": [1, 2]}]), "malformed vector"),
        (ok("vector", [{"value": [1, "2"]}]), "malformed vector"),
        (ok("vector", {"not": "a list"}), "not a list"),
    ],
)
async def test_unusable_answers_raise(response: httpx.Response, message: str) -> None:
    with pytest.raises(PrometheusError, match=message.replace("(", r"\(")):
        await canned(lambda _: response).query("up")


async def test_timeout_raises_prometheus_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    client = canned(handler)
    with pytest.raises(PrometheusError, match="timed out"):
        await client.query("up")
    assert await client.ready() is False


async def test_refused_connection_raises_and_is_not_ready() -> None:
    async with PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_seconds=2) as client:
        with pytest.raises(PrometheusError, match="failed"):
            await client.query("up")
        assert await client.ready() is False


# ---------------------------------------------------------------- the real server

# A version name that must be escaped in PromQL: quotes, a backslash, a brace, a newline.
ODD = 'v2 "quoted" \\ {brace} é\n'


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    good = next(s for s in SCENARIOS if s.name == "good")
    odd = Scenario(
        "odd", replace(good.canary, name=ODD), good.stable, "good, with an odd version name"
    )
    with scraped(tmp_path / "prometheus", [odd]) as server:
        yield server


@pytest.mark.prometheus
async def test_against_a_real_server(prometheus: PrometheusServer) -> None:
    async with PrometheusClient(prometheus.base_url) as client:
        assert await client.ready()
        selector = f"tagstream_classifier_predictions_total{{model_version={promql_string(ODD)}}}"
        samples = await client.query(f"sum by (model_version, route) ({selector})")
        assert {s.labels["route"]: s.value for s in samples} == {"auto": 899.0, "review": 101.0}
        assert {s.labels["model_version"] for s in samples} == {ODD}
        assert await client.query("scalar(vector(2))") == [Sample({}, 2.0)]
        assert (await client.query("vector(1) / 0"))[0].value == math.inf
        with pytest.raises(PrometheusError, match="HTTP 400: bad_data"):
            await client.query("sum(")
        with pytest.raises(PrometheusError, match="matrix"):
            await client.query("up[5s]")

        async def run_analysis() -> list[CheckResult]:
            return await analyse(
                client, canary=ODD, stable="good-stable", window_seconds=WINDOW_SECONDS,
                config=AnalysisConfig(), require_labels=True, final_step=True,
            )  # fmt: skip

        results = await run_analysis()
        assert {r.check: r.verdict for r in results} == dict.fromkeys(CHECKS, "pass"), [
            r.detail for r in results
        ]
        assert overall_verdict(results) == "pass"

        prometheus.stop()

        assert await client.ready() is False
        down = await run_analysis()
        assert {r.check: r.verdict for r in down} == dict.fromkeys(CHECKS, "inconclusive")
        assert overall_verdict(down) == "inconclusive"
