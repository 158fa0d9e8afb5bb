"""The SQL dedup store on SQLite and PostgreSQL: claims, races, states, outages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from services.ingest.dedup import DedupKeys, StoredItem
from services.ingest.repository import IngestItemRepository, SqlDedupStore, StoreUnavailable
from services.ingest.tables import IngestItemRow
from shared.db.session import make_engine
from tests.fixtures.db import migrated


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    migrated(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def keys(content: str, **others: str) -> DedupKeys:
    return DedupKeys(content_hash=content.ljust(64, "0"), **others)


def new_id() -> str:
    return uuid.uuid4().hex


async def test_new_item_is_pending_then_produced(engine: Engine) -> None:
    store = SqlDedupStore(engine)
    [claim] = await store.claim([(keys("a"), "id-a")])
    assert (claim.item_id, claim.state, claim.matched) == ("id-a", "pending", "new")

    await store.mark_produced(["id-a"])
    [again] = await store.claim([(keys("a"), new_id())])

    assert (again.item_id, again.state, again.matched) == ("id-a", "produced", "content")
    assert again.is_duplicate


async def test_claims_in_one_call_see_each_other(engine: Engine) -> None:
    store = SqlDedupStore(engine)
    claims = await store.claim([(keys("b"), "first"), (keys("b"), "second")])
    assert [c.item_id for c in claims] == ["first", "first"]


async def test_identity_keys_are_attached_when_a_pending_item_is_retried(engine: Engine) -> None:
    store = SqlDedupStore(engine)
    await store.claim([(keys("c"), "id-c")])
    await store.claim([(keys("c", idempotency_key="i" * 64, external_key="e" * 64), new_id())])
    await store.mark_produced(["id-c"])

    [by_key] = await store.claim([(keys("other", idempotency_key="i" * 64), new_id())])

    assert (by_key.item_id, by_key.matched, by_key.is_duplicate) == (
        "id-c",
        "idempotency_key",
        False,
    )


async def test_identity_keys_held_by_another_item_are_left_there(engine: Engine) -> None:
    store = SqlDedupStore(engine)
    await store.claim([(keys("g1", idempotency_key="i" * 64), "by-key")])
    await store.claim([(keys("g2", external_key="e" * 64), "by-external-id")])

    [both] = await store.claim([(keys("g3", idempotency_key="i" * 64, external_key="e" * 64), "x")])
    [external] = await store.claim([(keys("g4", external_key="e" * 64), "y")])

    assert (both.item_id, both.matched) == ("by-key", "idempotency_key")
    assert (external.item_id, external.matched) == ("by-external-id", "external_id")


async def test_concurrent_identical_claims_resolve_to_one_id(engine: Engine) -> None:
    store = SqlDedupStore(engine)
    same = keys("d", url_key="u" * 64)
    claims = await asyncio.gather(*(store.claim([(same, new_id())]) for _ in range(12)))

    ids = {claim.item_id for [claim] in claims}
    assert len(ids) == 1
    assert sum(claim.matched == "new" for [claim] in claims) == 1


async def test_losing_an_insert_race_rereads_the_winner(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqlDedupStore(engine)
    await store.claim([(keys("e"), "winner")])
    real = IngestItemRepository.candidates
    calls = 0

    def stale_first_read(self: IngestItemRepository, k: DedupKeys) -> list[StoredItem]:
        # the first read misses the winner, as if it committed just after we looked
        nonlocal calls
        calls += 1
        return [] if calls == 1 else real(self, k)

    monkeypatch.setattr(IngestItemRepository, "candidates", stale_first_read)
    [claim] = await store.claim([(keys("e"), "loser")])

    assert (claim.item_id, claim.matched) == ("winner", "content")
    with engine.connect() as connection:
        assert connection.scalars(select(IngestItemRow.item_id)).all() == ["winner"]


async def test_an_unreachable_database_is_unavailable_not_an_error() -> None:
    engine = make_engine(
        "postgresql://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    store = SqlDedupStore(engine)
    try:
        assert await store.ping() is False
        with pytest.raises(StoreUnavailable):
            await store.claim([(keys("f"), "x")])
    finally:
        engine.dispose()


async def test_a_conflict_on_any_key_resolves_by_priority(engine: Engine) -> None:
    # A new item is one INSERT that does nothing when any unique key is taken; only then
    # are the items sharing its keys read, and the explicit identity wins over content.
    store = SqlDedupStore(engine)
    await store.claim([(keys("h1", url_key="u" * 64), "by-url")])
    await store.claim([(keys("h2", external_key="e" * 64), "by-external-id")])
    await store.mark_produced(["by-url", "by-external-id"])

    [url] = await store.claim([(keys("h3", url_key="u" * 64), "x")])
    [identity] = await store.claim([(keys("h1", external_key="e" * 64), "y")])
    [new] = await store.claim([(keys("h4", url_key="v" * 64), "z")])

    assert (url.item_id, url.matched, url.is_duplicate) == ("by-url", "url", True)
    assert (identity.item_id, identity.matched) == ("by-external-id", "external_id")
    assert (new.item_id, new.matched, new.state) == ("z", "new", "pending")
    with engine.connect() as connection:
        stored = connection.scalars(select(IngestItemRow.item_id)).all()
    assert sorted(stored) == ["by-external-id", "by-url", "z"]
