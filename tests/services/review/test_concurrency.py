"""Two reviewers never hold the same item: 20 threads, each with its own session, race to
claim and label 50 items; on SQLite (conditional UPDATE) and PostgreSQL (SKIP LOCKED)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from services.review import service
from tests.services.review.conftest import T0, Enqueue, request

THREADS = 20
ITEMS = 50


def test_concurrent_claims_never_share_an_item(
    sessions: sessionmaker[Session], enqueue: Enqueue
) -> None:
    enqueue(*(request(f"i{n:02d}", confidence=(n % 7) / 10, minute=n) for n in range(ITEMS)))
    holders: dict[str, str] = {}  # item -> reviewer holding it right now
    claims: list[tuple[str, str]] = []
    overlaps: list[str] = []
    errors: list[BaseException] = []
    guard = threading.Lock()
    start = threading.Barrier(THREADS)

    def work(reviewer: str) -> None:
        try:
            start.wait(timeout=10)
            while True:
                with sessions() as session, session.begin():
                    item = service.claim_next(session, reviewer, T0)
                if item is None:
                    return
                with guard:
                    if item.item_id in holders:
                        overlaps.append(item.item_id)
                    holders[item.item_id] = reviewer
                    claims.append((item.item_id, reviewer))
                with sessions() as session, session.begin():
                    service.label_item(
                        session, reviewer, item.item_id, "mlops", T0 + timedelta(seconds=1)
                    )
                with guard:  # released only once the label is committed
                    del holders[item.item_id]
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"r{n}",)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert overlaps == []
    per_item = Counter(item for item, _ in claims)
    assert len(per_item) == ITEMS
    assert set(per_item.values()) == {1}
    with sessions.begin() as session:
        assert service.review_stats(session, T0).queue_depth == 0


def test_simultaneous_first_claims_get_distinct_items(
    sessions: sessionmaker[Session], enqueue: Enqueue
) -> None:
    enqueue(*(request(f"i{n:02d}", minute=n) for n in range(ITEMS)))
    claimed: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(reviewer: str) -> None:
        try:
            start.wait(timeout=10)
            with sessions() as session, session.begin():
                item = service.claim_next(session, reviewer, T0)
            assert item is not None
            claimed.append(item.item_id)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"r{n}",)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(claimed) == THREADS
    assert len(set(claimed)) == THREADS
    # priority holds under contention: the oldest THREADS items were taken
    assert sorted(claimed) == [f"i{n:02d}" for n in range(THREADS)]
