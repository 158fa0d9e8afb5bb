"""SQL of the dedup store, and the store the service uses (SQLite or PostgreSQL).

Concurrent identical requests resolve to one id: the unique constraints let only one
insert win, and the loser re-reads the winner's row (see ``SqlDedupStore``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine, or_, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from services.ingest.dedup import Claim, DedupKeys, StoredItem, resolve
from services.ingest.tables import IngestItemRow
from shared.db.session import make_session_factory

P = ParamSpec("P")
T = TypeVar("T")

# A request's insert can lose to a concurrent one at most once per key it holds.
_CLAIM_ATTEMPTS = 5


class StoreUnavailable(RuntimeError):
    """The database could not be reached or gave up; the request may be retried."""


class IngestItemRepository:
    """Reads and writes ``ingest_items`` within the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def candidates(self, keys: DedupKeys) -> list[StoredItem]:
        """Stored items sharing any of ``keys``."""
        conditions = [IngestItemRow.content_hash == keys.content_hash]
        if keys.url_key is not None:
            conditions.append(IngestItemRow.url_key == keys.url_key)
        if keys.external_key is not None:
            conditions.append(IngestItemRow.external_key == keys.external_key)
        if keys.idempotency_key is not None:
            conditions.append(IngestItemRow.idempotency_key == keys.idempotency_key)
        rows = self._session.scalars(select(IngestItemRow).where(or_(*conditions)))
        return [_to_stored(row) for row in rows]

    def insert(self, item_id: str, keys: DedupKeys, now: datetime) -> None:
        """Insert a pending item; flushed now so a unique conflict surfaces here."""
        self._session.add(
            IngestItemRow(
                item_id=item_id,
                content_hash=keys.content_hash,
                url_key=keys.url_key,
                external_key=keys.external_key,
                idempotency_key=keys.idempotency_key,
                state="pending",
                created_at=now,
            )
        )
        self._session.flush()

    def attach(self, item_id: str, values: Mapping[str, str]) -> None:
        self._session.execute(
            update(IngestItemRow).where(IngestItemRow.item_id == item_id).values(**values)
        )

    def mark_produced(self, item_ids: Collection[str], now: datetime) -> None:
        self._session.execute(
            update(IngestItemRow)
            .where(IngestItemRow.item_id.in_(list(item_ids)), IngestItemRow.state == "pending")
            .values(state="produced", produced_at=now)
        )


def _to_stored(row: IngestItemRow) -> StoredItem:
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
        self._sessions: sessionmaker[Session] = make_session_factory(engine, immediate=True)

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
        with self._sessions.begin() as session:
            repository = IngestItemRepository(session)
            return [self._claim_one(session, repository, k, i, now) for k, i in requests]

    @staticmethod
    def _claim_one(
        session: Session,
        repository: IngestItemRepository,
        keys: DedupKeys,
        new_id: str,
        now: datetime,
    ) -> Claim:
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                with session.begin_nested():
                    resolution = resolve(repository.candidates(keys), keys, new_id)
                    if resolution.insert:
                        repository.insert(new_id, keys, now)
                    elif resolution.attach:
                        repository.attach(resolution.claim.item_id, resolution.attach)
                    return resolution.claim
            except IntegrityError:
                # A concurrent request stored an item with one of these keys first
                # (PostgreSQL made us wait for its commit): read it on the next pass.
                continue
        raise StoreUnavailable(f"could not claim an item after {_CLAIM_ATTEMPTS} attempts")

    def _mark_produced(self, item_ids: Collection[str]) -> None:
        with self._sessions.begin() as session:
            IngestItemRepository(session).mark_produced(item_ids, datetime.now(UTC))

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
