"""A small async client for the Prometheus HTTP API: instant queries and readiness.

Every way of not getting a usable answer (refused, timed out, HTTP error, an error status,
an unexpected body) raises :class:`PrometheusError`, so callers have one thing to catch and
can never mistake a failure for "no data".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import httpx


class PrometheusError(Exception):
    """Prometheus gave no usable answer; the message says what happened."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant-query result. ``value`` may be NaN or ±Inf."""

    labels: dict[str, str]
    value: float


class PromQuery(Protocol):
    """What the analysis needs from Prometheus: tests pass an in-memory fake."""

    async def query(self, promql: str) -> list[Sample]: ...


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal, safely escaped.

    PromQL strings take Go escapes; JSON's (``\\"``, ``\\\\``, ``\\n``, ``\\u00XX``) are a
    subset of them, so a JSON string literal is a valid PromQL one with the same value.
    """
    return json.dumps(value, ensure_ascii=False)


def parse_query_response(body: Any) -> list[Sample]:
    """The samples of a decoded ``/api/v1/query`` response body.

    A vector gives one sample per series, a scalar one sample with no labels; any other
    result type, an error status or a malformed body raises :class:`PrometheusError`.
    """
    if not isinstance(body, dict):
        raise PrometheusError(f"malformed response: expected a JSON object, got {body!r:.200}")
    status = body.get("status")
    if status != "success":
        error_type = body.get("errorType", "unknown")
        error = body.get("error", "no error message")
        raise PrometheusError(f"query failed with status {status!r}: {error_type}: {error}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise PrometheusError("malformed response: no 'data' object")
    result_type = data.get("resultType")
    result = data.get("result")
    try:
        if result_type == "vector":
            if not isinstance(result, list):
                raise PrometheusError("malformed response: vector result is not a list")
            return [
                Sample(labels=_labels(item["metric"]), value=_value(item["value"]))
                for item in result
            ]
        if result_type == "scalar":
            return [Sample(labels={}, value=_value(result))]
    except (KeyError, TypeError, ValueError) as exc:
        raise PrometheusError(f"malformed {result_type} result: {exc!r}") from exc
    raise PrometheusError(f"unsupported result type {result_type!r} (want vector or scalar)")


def _labels(metric: Any) -> dict[str, str]:
    if not isinstance(metric, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metric.items()
    ):
        raise TypeError(f"labels are not a string map: {metric!r:.200}")
    return dict(metric)


def _value(pair: Any) -> float:
    # [<unix time>, "<value>"]; Prometheus writes NaN and infinities as "NaN", "+Inf", "-Inf".
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        raise TypeError(f"sample value is not [time, string]: {pair!r:.200}")
    return float(pair[1])


class PrometheusClient:
    """Instant queries against one Prometheus server.

    Pass ``client`` to share a connection pool (it is then not closed by :meth:`aclose`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()

    async def query(self, promql: str) -> list[Sample]:
        """Evaluate ``promql`` now; form-encoded POST, so long queries fit."""
        url = f"{self.base_url}/api/v1/query"
        try:
            response = await self._client.post(
                url,
                # The server-side timeout stops evaluation; the client one stops waiting.
                data={"query": promql, "timeout": str(float(self.timeout_seconds))},  # seconds
                timeout=self.timeout_seconds,
            )
        except httpx.TimeoutException as exc:
            raise PrometheusError(
                f"query timed out after {self.timeout_seconds}s at {url}: {exc!r}"
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise PrometheusError(f"query request to {url} failed: {exc!r}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            detail = (
                f"{body.get('errorType')}: {body.get('error')}"
                if isinstance(body, dict)
                else response.text[:200]
            )
            raise PrometheusError(f"query returned HTTP {response.status_code}: {detail}")
        if body is None:
            raise PrometheusError(f"malformed response: not JSON: {response.text[:200]!r}")
        return parse_query_response(body)

    async def ready(self) -> bool:
        """True when the server says it is ready to serve queries (``/-/ready``)."""
        try:
            response = await self._client.get(
                f"{self.base_url}/-/ready", timeout=self.timeout_seconds
            )
        except (httpx.HTTPError, httpx.InvalidURL):
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
