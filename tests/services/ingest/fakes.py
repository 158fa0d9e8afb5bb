"""In-memory stand-ins for the dedup store and the broker, for unit tests only.

The store runs the same ``resolve`` as the SQL store; test_repository.py and the API
tests prove the real ones behave the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import replace

from services.ingest.dedup import Claim, DedupKeys, StoredItem, resolve
from shared.kafka import BrokerUnavailable


class MemoryDedupStore:
    def __init__(self) -> None:
        self.items: dict[str, StoredItem] = {}

    async def claim(self, requests: Sequence[tuple[DedupKeys, str]]) -> list[Claim]:
        claims = []
        for keys, new_id in requests:
            resolution = resolve(self.items.values(), keys, new_id)
            item_id = resolution.claim.item_id
            if resolution.insert:
                self.items[item_id] = StoredItem(item_id, "pending", keys)
            elif resolution.attach:
                item = self.items[item_id]
                self.items[item_id] = replace(item, keys=replace(item.keys, **resolution.attach))
            self._check_unique()
            claims.append(resolution.claim)
        return claims

    def _check_unique(self) -> None:
        # what the database's unique constraints would refuse
        for attr in ("content_hash", "url_key", "external_key", "idempotency_key"):
            values = [getattr(i.keys, attr) for i in self.items.values()]
            present = [v for v in values if v is not None]
            assert len(present) == len(set(present)), f"two items share {attr}"

    async def mark_produced(self, item_ids: Collection[str]) -> None:
        for item_id in item_ids:
            self.items[item_id] = replace(self.items[item_id], state="produced")

    async def ping(self) -> bool:
        return True


class MemoryPublisher:
    """Records what was sent; ``down`` makes every send fail like an unreachable broker;
    ``hold`` makes sends wait (acknowledgements not yet back) until it is set."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.down = False
        self.hold: asyncio.Event | None = None
        self.waiting = 0
        self._arrived = asyncio.Event()

    async def until_waiting(self, count: int) -> None:
        """Until ``count`` sends are held."""
        while self.waiting < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self.hold is not None:
            self.waiting += 1
            self._arrived.set()
            await self.hold.wait()
            self.waiting -= 1
        if self.down:
            raise BrokerUnavailable("no acknowledgement within 5 s")
        self.sent.append((topic, key, value))
