"""Send a CSV of items to ingest's HTTP API as a scraper would: paced, retried, counted.

The logic of ``tagstream items send`` without the terminal: rows read into request
bodies, one POST per item at an optional steady rate, 429 and 503 waited out as their
``Retry-After`` says, and an outcome per row for the summary.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import httpx

RETRYABLE = frozenset({429, 502, 503, 504})
DEFAULT_RETRY_AFTER_SECONDS = 1.0
MAX_RETRY_AFTER_SECONDS = 60.0


class SendError(Exception):
    """Sending cannot go on (bad file, key refused, ingest unreachable); the message says why."""


class Result(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Row:
    """One CSV row as the body of ``POST /v1/items``; ``line`` for messages."""

    line: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    row: Row
    result: Result
    reason: str = ""
    item_id: str | None = None


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    retries: int = 0
    seconds: float = 0.0

    def count(self, result: Result) -> int:
        return sum(1 for o in self.outcomes if o.result is result)

    @property
    def complete(self) -> bool:
        """Every row landed (accepted now or before)."""
        return all(o.result in (Result.ACCEPTED, Result.DUPLICATE) for o in self.outcomes)


def read_rows(path: Path, source: str) -> list[Row]:
    """Rows of a CSV with ``title`` and optional ``description``, ``id``, ``created_on``.

    ``id`` becomes the ``external_id`` (so sending a file twice gets the same item ids
    back as duplicates) and ``created_on`` the ``created_at``; other columns (``tag``)
    are not sent: a scraper does not know the label.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if "title" not in (reader.fieldnames or []):
                found = ", ".join(reader.fieldnames or []) or "no header"
                raise SendError(f"{path} has no title column (found: {found})")
            return [_row(line, record, source) for line, record in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError) as exc:
        raise SendError(f"cannot read {path}: {exc}") from exc


def _row(line: int, record: dict[str, str | None], source: str) -> Row:
    body: dict[str, Any] = {"title": record.get("title") or "", "source": source}
    if record.get("description"):
        body["description"] = record["description"]
    if (record.get("id") or "").strip():
        body["external_id"] = (record["id"] or "").strip()
    if (record.get("created_on") or "").strip():
        body["created_at"] = (record["created_on"] or "").strip().replace(" ", "T", 1)
    return Row(line, body)


def retry_after(response: httpx.Response) -> float:
    """Seconds to wait as the answer asks (``Retry-After`` in seconds), within bounds."""
    try:
        seconds = float(response.headers.get("retry-after", DEFAULT_RETRY_AFTER_SECONDS))
    except ValueError:  # an HTTP date: rare, and a second is a fair wait
        seconds = DEFAULT_RETRY_AFTER_SECONDS
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _reasons(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", [])
        return (
            "; ".join(
                f"{d.get('field') or 'body'}: {d.get('reason')}"
                for d in detail
                if isinstance(d, dict)
            )
            or response.text[:200]
        )
    except (ValueError, AttributeError):
        return response.text[:200]


class Sender:
    """Posts rows one at a time; ``sleep`` and ``clock`` are injectable for unit tests."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        rate: float | None = None,
        max_attempts: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.rate, self.max_attempts = client, rate, max_attempts
        self.sleep, self.clock = sleep, clock

    def send_all(self, rows: Iterable[Row], summary: Summary) -> Iterator[Outcome]:
        """Send every row, at ``rate`` per second when set; yields each outcome."""
        start = self.clock()
        for n, row in enumerate(rows):
            if self.rate:
                wait = start + n / self.rate - self.clock()
                if wait > 0:
                    self.sleep(wait)
            outcome = self.send(row, summary)
            summary.outcomes.append(outcome)
            summary.seconds = self.clock() - start
            yield outcome

    def send(self, row: Row, summary: Summary) -> Outcome:
        """One item, retried on 429/5xx-unavailable and on connection errors.

        The same ``Idempotency-Key`` goes with every attempt, so a retry after a lost
        answer gets the first attempt's item id instead of a second item.
        """
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        last = ""
        for attempt in range(self.max_attempts):
            if attempt:
                summary.retries += 1
            try:
                response = self.client.post("/v1/items", json=row.body, headers=headers)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                if attempt == 0 and not summary.outcomes:
                    # nothing has ever got through: ingest is not there, do not wait it out
                    raise SendError(
                        f"ingest at {self.client.base_url} did not answer ({last}); "
                        "is `make run` (or `tagstream up`) running? Set TAGSTREAM_INGEST_URL "
                        "to send elsewhere."
                    ) from exc
                self.sleep(DEFAULT_RETRY_AFTER_SECONDS)
                continue
            if response.status_code == 202:
                data = response.json()
                return Outcome(row, Result(data["status"]), item_id=data.get("id"))
            if response.status_code == 401:
                raise SendError(
                    "ingest refused the API key (401): set TAGSTREAM_INGEST_API_KEY to one of "
                    "ingest's TAGSTREAM_INGEST_API_KEYS"
                )
            if response.status_code in RETRYABLE:
                last = f"{response.status_code}: {_reasons(response)}"
                self.sleep(retry_after(response))
                continue
            return Outcome(row, Result.REJECTED, f"{response.status_code} {_reasons(response)}")
        return Outcome(row, Result.FAILED, f"gave up after {self.max_attempts} attempts ({last})")
