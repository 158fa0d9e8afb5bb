"""The ingest logic with in-memory fakes: dedup, idempotency, no false acceptance."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from services.ingest.metrics import IngestMetrics
from services.ingest.schemas import ItemIn
from services.ingest.service import BrokerUnavailable, IngestService, ItemRejected
from services.ingest.validation import ItemLimits
from shared.messages import ContentItem
from tests.services.ingest.conftest import metric
from tests.services.ingest.fakes import MemoryDedupStore, MemoryPublisher

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CLIENT = "client-a"


@pytest.fixture
def store() -> MemoryDedupStore:
    return MemoryDedupStore()


@pytest.fixture
def publisher() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture
def metrics_registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def service(
    store: MemoryDedupStore, publisher: MemoryPublisher, metrics_registry: CollectorRegistry
) -> IngestService:
    return IngestService(
        store=store,
        publisher=publisher,
        topic="content.raw",
        limits=ItemLimits(),
        max_batch_items=3,
        metrics=IngestMetrics(metrics_registry),
        clock=lambda: NOW,
    )


def sent_items(publisher: MemoryPublisher) -> list[ContentItem]:
    return [ContentItem.decode(value) for _, _, value in publisher.sent]


async def test_an_accepted_item_is_produced_normalised_and_keyed_by_its_id(
    service: IngestService, publisher: MemoryPublisher
) -> None:
    item = ItemIn(
        title=" Ｆine-tuning\x00  LLMs ", url="HTTPS://Ex.org/a/?utm_source=x", source="s"
    )
    outcome = await service.submit(item, client=CLIENT)

    assert outcome.status == "accepted"
    [(topic, key, _)] = publisher.sent
    assert (topic, key) == ("content.raw", outcome.item_id.encode())
    [message] = sent_items(publisher)
    assert message.item_id == outcome.item_id
    assert message.title == "Fine-tuning LLMs"
    assert message.url == "https://ex.org/a"
    assert message.received_at == NOW


async def test_same_content_is_a_duplicate_of_the_first_and_not_produced_again(
    service: IngestService, publisher: MemoryPublisher, metrics_registry: CollectorRegistry
) -> None:
    first = await service.submit(ItemIn(title="Graph nets", description="GNN"), client=CLIENT)
    again = await service.submit(ItemIn(title="  GRAPH   nets", description="gnn"), client="b")

    assert (again.item_id, again.status) == (first.item_id, "duplicate")
    assert len(publisher.sent) == 1
    assert metric(metrics_registry, "tagstream_ingest_items_total", result="duplicate") == 1


async def test_same_canonical_url_is_a_duplicate_even_with_other_content(
    service: IngestService, publisher: MemoryPublisher
) -> None:
    first = await service.submit(ItemIn(title="a", url="https://x.org/p"), client=CLIENT)
    again = await service.submit(ItemIn(title="b", url="HTTPS://X.org/p/#top"), client=CLIENT)

    assert (again.item_id, again.status) == (first.item_id, "duplicate")
    assert len(publisher.sent) == 1


async def test_external_id_retry_gets_the_same_id_as_accepted(
    service: IngestService, publisher: MemoryPublisher
) -> None:
    first = await service.submit(ItemIn(title="v1", source="rss", external_id="42"), client=CLIENT)
    retry = await service.submit(ItemIn(title="v2", source="rss", external_id="42"), client=CLIENT)
    other_source = await service.submit(
        ItemIn(title="v3", source="api", external_id="42"), client=CLIENT
    )

    assert (retry.item_id, retry.status) == (first.item_id, "accepted")
    assert other_source.item_id != first.item_id
    assert len(publisher.sent) == 2


async def test_idempotency_keys_are_per_client(
    service: IngestService, publisher: MemoryPublisher
) -> None:
    first = await service.submit(ItemIn(title="x"), client=CLIENT, idempotency_key="k1")
    retry = await service.submit(ItemIn(title="x"), client=CLIENT, idempotency_key="k1")
    other = await service.submit(ItemIn(title="y"), client="client-b", idempotency_key="k1")

    assert (retry.item_id, retry.status) == (first.item_id, "accepted")
    assert other.item_id != first.item_id
    assert len(publisher.sent) == 2


async def test_broker_down_means_no_acceptance_and_the_retry_reuses_the_id(
    service: IngestService,
    publisher: MemoryPublisher,
    store: MemoryDedupStore,
    metrics_registry: CollectorRegistry,
) -> None:
    publisher.down = True
    with pytest.raises(BrokerUnavailable):
        await service.submit(ItemIn(title="kept"), client=CLIENT)
    [pending] = store.items.values()
    assert pending.state == "pending"
    assert metric(metrics_registry, "tagstream_ingest_broker_unavailable_total") == 1

    publisher.down = False
    retry = await service.submit(ItemIn(title="kept"), client=CLIENT)

    assert (retry.item_id, retry.status) == (pending.item_id, "accepted")
    assert [m.item_id for m in sent_items(publisher)] == [pending.item_id]
    assert store.items[pending.item_id].state == "produced"


async def test_a_retry_accepted_after_an_outage_stays_accepted_for_its_idempotency_key(
    service: IngestService, publisher: MemoryPublisher
) -> None:
    publisher.down = True
    with pytest.raises(BrokerUnavailable):
        await service.submit(ItemIn(title="t"), client=CLIENT)
    publisher.down = False
    accepted = await service.submit(ItemIn(title="t"), client=CLIENT, idempotency_key="k")
    again = await service.submit(ItemIn(title="t"), client=CLIENT, idempotency_key="k")

    assert (again.item_id, again.status) == (accepted.item_id, "accepted")


async def test_invalid_items_are_rejected_and_counted_by_reason(
    service: IngestService, metrics_registry: CollectorRegistry
) -> None:
    with pytest.raises(ItemRejected) as caught:
        await service.submit(ItemIn(title="t" * 301, url="ftp://x"), client=CLIENT)

    assert caught.value.status_code == 422
    assert {e.field for e in caught.value.errors} == {"title", "url"}
    assert (
        metric(metrics_registry, "tagstream_ingest_rejections_total", reason="title_too_long") == 1
    )
    assert (
        metric(metrics_registry, "tagstream_ingest_rejections_total", reason="bad_url_scheme") == 1
    )
    assert metric(metrics_registry, "tagstream_ingest_items_total", result="rejected") == 1


async def test_batch_accepts_good_items_next_to_rejected_ones(
    service: IngestService, publisher: MemoryPublisher
) -> None:
    results = await service.submit_batch(
        [{"title": "good"}, {"title": " \x00 "}, {"title": "GOOD"}], client=CLIENT
    )

    assert [r.status for r in results] == ["accepted", "rejected", "duplicate"]
    assert [r.index for r in results] == [0, 1, 2]
    assert results[2].item_id == results[0].item_id
    assert results[1].item_id is None
    assert [(e.field, e.category) for e in results[1].errors] == [("title", "title_empty")]
    assert len(publisher.sent) == 1


async def test_batch_retry_with_the_same_idempotency_key_returns_the_same_ids(
    service: IngestService, publisher: MemoryPublisher
) -> None:
    batch = [{"title": "a"}, {"title": "b"}]
    first = await service.submit_batch(batch, client=CLIENT, idempotency_key="batch-1")
    retry = await service.submit_batch(batch, client=CLIENT, idempotency_key="batch-1")

    assert [(r.item_id, r.status) for r in retry] == [(r.item_id, "accepted") for r in first]
    assert len(publisher.sent) == 2


async def test_batch_limits(service: IngestService, metrics_registry: CollectorRegistry) -> None:
    with pytest.raises(ItemRejected) as too_many:
        await service.submit_batch([{"title": str(i)} for i in range(4)], client=CLIENT)
    with pytest.raises(ItemRejected) as empty:
        await service.submit_batch([], client=CLIENT)

    assert (too_many.value.status_code, too_many.value.errors[0].field) == (413, "items")
    assert "at most 3" in too_many.value.errors[0].reason
    assert (empty.value.status_code, empty.value.errors[0].field) == (422, "items")
    assert (
        metric(metrics_registry, "tagstream_ingest_rejections_total", reason="batch_too_large") == 1
    )


async def test_batch_with_the_broker_down_fails_whole_and_keeps_ids_for_the_retry(
    service: IngestService, publisher: MemoryPublisher, store: MemoryDedupStore
) -> None:
    publisher.down = True
    with pytest.raises(BrokerUnavailable):
        await service.submit_batch([{"title": "a"}, {"title": "b"}], client=CLIENT)
    pending = {item.item_id for item in store.items.values()}

    publisher.down = False
    retry = await service.submit_batch([{"title": "a"}, {"title": "b"}], client=CLIENT)

    assert {r.item_id for r in retry} == pending
    assert {r.status for r in retry} == {"accepted"}


async def test_identity_keys_held_by_another_item_are_not_moved(
    service: IngestService, publisher: MemoryPublisher
) -> None:
    by_key = await service.submit(ItemIn(title="a"), client=CLIENT, idempotency_key="k")
    by_ext = await service.submit(ItemIn(title="b", external_id="e"), client=CLIENT)
    # the key names the first item, the external id the second: the key wins
    both = await service.submit(
        ItemIn(title="c", external_id="e"), client=CLIENT, idempotency_key="k"
    )
    ext_again = await service.submit(ItemIn(title="d", external_id="e"), client=CLIENT)

    assert (both.item_id, both.status) == (by_key.item_id, "accepted")
    assert ext_again.item_id == by_ext.item_id
    assert len(publisher.sent) == 2
