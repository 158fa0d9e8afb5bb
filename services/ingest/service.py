"""The ingest logic: validate and normalise, screen duplicates, produce, and only then
say "accepted". No HTTP here; api.py translates.

Flow per item: claim it in the dedup store (a new item is stored ``pending`` under a
fresh id and committed) -> produce a ``ContentItem`` keyed by that id and wait for the
broker's acknowledgement -> mark it ``produced``. If the broker does not acknowledge,
the request fails with ``BrokerUnavailable`` (503) and the row stays pending: a retry of
the same item resolves to the same id and produces it again, so a write that did
happen is only ever a duplicate of the same id, which consumers drop.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, NoReturn

import structlog

from services.ingest.admission import Admission, Overloaded
from services.ingest.dedup import Claim, DedupStore, dedup_keys
from services.ingest.metrics import IngestMetrics
from services.ingest.repository import StoreUnavailable
from services.ingest.schemas import ItemIn, ItemStatus
from services.ingest.validation import (
    CleanItem,
    ItemLimits,
    ItemRejected,
    clean_item,
    parse_item,
)
from shared.http.errors import FieldError
from shared.kafka.producer import BrokerUnavailable, Publisher
from shared.messages import ContentItem
from shared.ratelimit import RateLimited

log = structlog.get_logger(__name__)

__all__ = [
    "BrokerUnavailable",
    "IngestService",
    "ItemRejected",
    "Overloaded",
    "Publisher",
    "RateLimited",
    "StoreUnavailable",
]


@dataclass(frozen=True)
class Outcome:
    item_id: str
    status: ItemStatus


@dataclass(frozen=True)
class BatchOutcome:
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    item_id: str | None = None
    errors: list[FieldError] = field(default_factory=list)


def _new_item_id() -> str:
    return uuid.uuid4().hex


def _utcnow() -> datetime:
    return datetime.now(UTC)


class IngestService:
    def __init__(
        self,
        *,
        store: DedupStore,
        publisher: Publisher,
        topic: str,
        limits: ItemLimits,
        max_batch_items: int,
        metrics: IngestMetrics,
        admission: Admission | None = None,
        new_id: Callable[[], str] = _new_item_id,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._admission = admission or Admission.unlimited(metrics)
        self._store = store
        self._publisher = publisher
        self._topic = topic
        self._limits = limits
        self._max_batch_items = max_batch_items
        self._metrics = metrics
        self._new_id = new_id
        self._clock = clock

    async def submit(
        self, item: ItemIn, *, client: str, idempotency_key: str | None = None
    ) -> Outcome:
        """Ingest one item; raises ``ItemRejected``, ``RateLimited``, ``Overloaded``,
        ``BrokerUnavailable`` or ``StoreUnavailable``."""
        with self._admission.admit(client, 1):
            try:
                clean = clean_item(item, self._limits)
            except ItemRejected as exc:
                self._count_rejected(exc.errors)
                raise
            [outcome] = await self._ingest(
                [clean], client=client, idempotency_keys=[idempotency_key]
            )
        return outcome

    async def submit_batch(
        self, raw_items: Sequence[object], *, client: str, idempotency_key: str | None = None
    ) -> list[BatchOutcome]:
        """Ingest a batch: every valid item is ingested even when others are rejected.

        With an ``idempotency_key``, item ``i`` is known by ``key#i``, so retrying the
        whole batch returns the same ids.
        """
        if len(raw_items) > self._max_batch_items:
            self._reject_request(
                FieldError(
                    "items",
                    f"a batch may hold at most {self._max_batch_items} items "
                    f"(got {len(raw_items)})",
                    "batch_too_large",
                ),
                status_code=413,
            )
        if not raw_items:
            self._reject_request(
                FieldError("items", "must hold at least one item", "batch_empty"),
                status_code=422,
            )
        # every item sent costs a token, valid or not: validating is work too
        with self._admission.admit(client, len(raw_items)):
            results: dict[int, BatchOutcome] = {}
            good: list[tuple[int, CleanItem]] = []
            for index, raw in enumerate(raw_items):
                try:
                    good.append((index, parse_item(raw, self._limits)))
                except ItemRejected as exc:
                    self._count_rejected(exc.errors)
                    results[index] = BatchOutcome(index, "rejected", errors=exc.errors)
            keys = [f"{idempotency_key}#{i}" if idempotency_key else None for i, _ in good]
            outcomes = await self._ingest(
                [item for _, item in good], client=client, idempotency_keys=keys
            )
        for (index, _), outcome in zip(good, outcomes, strict=True):
            results[index] = BatchOutcome(index, outcome.status, item_id=outcome.item_id)
        return [results[i] for i in range(len(raw_items))]

    def _count_rejected(self, errors: Sequence[FieldError]) -> None:
        self._metrics.count_rejections((e.category for e in errors), item=True)

    def _reject_request(self, error: FieldError, status_code: int) -> NoReturn:
        self._metrics.count_rejections([error.category], item=False)
        raise ItemRejected([error], status_code=status_code)

    async def _ingest(
        self, items: Sequence[CleanItem], *, client: str, idempotency_keys: Sequence[str | None]
    ) -> list[Outcome]:
        if not items:
            return []
        requests = [
            (dedup_keys(item, client=client, idempotency_key=key), self._new_id())
            for item, key in zip(items, idempotency_keys, strict=True)
        ]
        claims = await self._store.claim(requests)
        statuses: list[ItemStatus] = []
        to_produce: list[tuple[Claim, CleanItem]] = []
        seen: set[str] = set()
        for claim, item in zip(claims, items, strict=True):
            if claim.item_id in seen or claim.is_duplicate:
                # twice in one batch counts as a duplicate of its first occurrence
                statuses.append("duplicate")
            else:
                statuses.append("accepted")
                if claim.needs_produce:
                    to_produce.append((claim, item))
            seen.add(claim.item_id)
        await self._produce_all(to_produce)
        outcomes = []
        for claim, status in zip(claims, statuses, strict=True):
            self._metrics.items.labels(result=status).inc()
            log.info(f"item_{status}", item_id=claim.item_id, matched=claim.matched)
            outcomes.append(Outcome(claim.item_id, status))
        return outcomes

    async def _produce_all(self, pending: Sequence[tuple[Claim, CleanItem]]) -> None:
        results = await asyncio.gather(
            *(self._produce(claim.item_id, item) for claim, item in pending),
            return_exceptions=True,
        )
        pairs = list(zip(pending, results, strict=True))
        produced = [claim.item_id for (claim, _), result in pairs if result is None]
        if produced:
            try:
                await self._store.mark_produced(produced)
            except StoreUnavailable as exc:
                # The items are on the topic, so the answer stays 202; their rows stay
                # pending and a retry would re-produce the same ids (harmless downstream).
                log.warning("mark_produced_failed", items=len(produced), error=str(exc))
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, BrokerUnavailable):
                raise failure
        if failures:
            self._metrics.broker_unavailable.inc()
            for (claim, _), result in pairs:
                if result is not None:
                    log.warning("item_not_acknowledged", item_id=claim.item_id, error=str(result))
            raise failures[0]

    async def _produce(self, item_id: str, item: CleanItem) -> None:
        message = ContentItem(
            item_id=item_id,
            title=item.title,
            description=item.description,
            url=item.url,
            source=item.source,
            external_id=item.external_id,
            created_at=item.created_at,
            received_at=self._clock(),
        )
        started = time.perf_counter()
        await self._publisher.send(self._topic, item_id.encode(), message.encode())
        self._metrics.produce_latency.observe(time.perf_counter() - started)
