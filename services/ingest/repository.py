"""SQL of the dedup store, and the store the service uses (SQLite or PostgreSQL).

SQLAlchemy Core on one connection per unit of work, no ORM: this runs once or twice per
ingested item and the ORM's identity map and unit of work cost more CPU than the SQL.

A claim first tries to insert the item as new with ``INSERT ... ON CONFLICT DO NOTHING``
(one statement for the common case, a new item). Only when one of its keys is already
taken does it read the items sharing its keys and resolve against them. Concurrent
identical requests resolve to one id: the unique constraints let only one insert win
(PostgreSQL makes the others wait for its commit), and the losers read the winner's row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import Connection, Engine, Row, Table, bindparam, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.dml import Insert

from services.ingest.dedup import Claim, DedupKeys, StoredItem, resolve
from services.ingest.tables import IngestItemRow
from shared.db.session import writer

P = ParamSpec("P")
T = TypeVar("T")

# A request's insert can lose to a concurrent one at most once per key it holds.
_CLAIM_ATTEMPTS = 5

_ITEMS = cast(Table, IngestItemRow.__table__)
_KEY_COLUMNS = ("content_hash", "url_key", "external_key", "idempotency_key")
_SELECT_CANDIDATES = select(
    _ITEMS.c.item_id, _ITEMS.c.state, *(_ITEMS.c[name] for name in _KEY_COLUMNS)
)
_MARK_PRODUCED = (
    update(_ITEMS)
    .where(_ITEMS.c.item_id == bindparam("id"), _ITEMS.c.state == "pending")
    .values(state="produced", produced_at=bindparam("now"))
)


class StoreUnavailable(RuntimeError):
    """The database could not be reached or gave up; the request may be retried."""


def _insert_if_new(dialect: str) -> Insert:
    """``INSERT`` that does nothing when any unique key (or the id) is already taken."""
    if dialect == "sqlite":
        return sqlite.insert(_ITEMS).on_conflict_do_nothing().returning(_ITEMS.c.item_id)
    if dialect == "postgresql":
        return postgresql.insert(_ITEMS).on_conflict_do_nothing().returning(_ITEMS.c.item_id)
    raise ValueError(f"the dedup store supports SQLite and PostgreSQL, not {dialect}")


class IngestItemRepository:
    """Reads and writes ``ingest_items`` within the caller's transaction."""

    def __init__(self, connection: Connection, insert_if_new: Insert | None = None) -> None:
        self._connection = connection
        if insert_if_new is None:
            insert_if_new = _insert_if_new(connection.dialect.name)
        self._insert = insert_if_new

    def insert_if_new(self, item_id: str, keys: DedupKeys, now: datetime) -> bool:
        """Insert a pending item unless one of its keys is taken; True if inserted."""
        result = self._connection.execute(
            self._insert,
            {
                "item_id": item_id,
                "content_hash": keys.content_hash,
                "url_key": keys.url_key,
                "external_key": keys.external_key,
                "idempotency_key": keys.idempotency_key,
                "state": "pending",
                "created_at": now,
            },
        )
        # RETURNING, not rowcount: drivers need not report rowcount for an INSERT
        return result.first() is not None

    def candidates(self, keys: DedupKeys) -> list[StoredItem]:
        """Stored items sharing any of ``keys``."""
        conditions = [
            _ITEMS.c[name] == value
            for name in _KEY_COLUMNS
            if (value := getattr(keys, name)) is not None
        ]
        rows = self._connection.execute(_SELECT_CANDIDATES.where(or_(*conditions)))
        return [_to_stored(row) for row in rows]

    def attach(self, item_id: str, values: Mapping[str, str]) -> None:
        self._connection.execute(update(_ITEMS).where(_ITEMS.c.item_id == item_id).values(**values))

    def mark_produced(self, item_ids: Collection[str], now: datetime) -> None:
        self._connection.execute(_MARK_PRODUCED, [{"id": i, "now": now} for i in item_ids])


def _to_stored(row: Row[Any]) -> StoredItem:
    return StoredItem(
        item_id=row.item_id,
        state="produced" if row.state == "produced" else "pending",
        keys=DedupKeys(
            content_hash=row.content_hash,
            url_key=row.url_key,
            external_key=row.external_key,
            idempotency_key=row.idempotency_key,
        ),
    )


class SqlDedupStore:
    """The dedup store on a SQLAlchemy engine; blocking work runs in worker threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # BEGIN IMMEDIATE on SQLite: claims read then write, so they queue for the lock.
        self._writer = writer(engine)
        self._insert = _insert_if_new(engine.dialect.name)

    async def claim(self, requests: Sequence[tuple[DedupKeys, str]]) -> list[Claim]:
        return await asyncio.to_thread(self._guarded, self._claim_all, requests)

    async def mark_produced(self, item_ids: Collection[str]) -> None:
        if item_ids:
            await asyncio.to_thread(self._guarded, self._mark_produced, item_ids)

    async def ping(self) -> bool:
        try:
            await asyncio.to_thread(self._guarded, self._select_one)
        except StoreUnavailable:
            return False
        return True

    def _claim_all(self, requests: Sequence[tuple[DedupKeys, str]]) -> list[Claim]:
        now = datetime.now(UTC)
        with self._writer.begin() as connection:
            repository = IngestItemRepository(connection, self._insert)
            return [self._claim_one(connection, repository, k, i, now) for k, i in requests]

    @staticmethod
    def _claim_one(
        connection: Connection,
        repository: IngestItemRepository,
        keys: DedupKeys,
        new_id: str,
        now: datetime,
    ) -> Claim:
        for _ in range(_CLAIM_ATTEMPTS):
            if repository.insert_if_new(new_id, keys, now):
                return Claim(new_id, "pending", "new")
            resolution = resolve(repository.candidates(keys), keys, new_id)
            if resolution.insert:
                # The key's holder is not visible to this read (committed just after it
                # looked, or only the id collided): try again.
                continue
            if resolution.attach:
                try:
                    with connection.begin_nested():
                        repository.attach(resolution.claim.item_id, resolution.attach)
                except IntegrityError:
                    # A concurrent request took one of these keys first (PostgreSQL made
                    # us wait for its commit): resolve again against it.
                    continue
            return resolution.claim
        raise StoreUnavailable(f"could not claim an item after {_CLAIM_ATTEMPTS} attempts")

    def _mark_produced(self, item_ids: Collection[str]) -> None:
        with self._writer.begin() as connection:
            repository = IngestItemRepository(connection, self._insert)
            repository.mark_produced(item_ids, datetime.now(UTC))

    def _select_one(self) -> None:
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    @staticmethod
    def _guarded(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except (DBAPIError, PoolTimeout) as exc:
            # IntegrityError cannot get here: _claim_one handles it.
            raise StoreUnavailable(f"database unavailable: {type(exc).__name__}") from exc
