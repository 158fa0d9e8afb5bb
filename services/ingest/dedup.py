"""Duplicate screening and idempotent retries: the keys an item is known by, and which
stored item a new request resolves to. Pure logic; the store (repository.py) runs it
inside a database transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from services.ingest.validation import CleanItem

ItemState = Literal["pending", "produced"]
MatchKind = Literal["new", "idempotency_key", "external_id", "content", "url"]


def _digest(*parts: str) -> str:
    # Unit separator between parts: normalised text never contains control characters.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class DedupKeys:
    """sha256 digests an item is known by; only ``content_hash`` is always present."""

    content_hash: str
    url_key: str | None = None
    external_key: str | None = None
    idempotency_key: str | None = None


def dedup_keys(item: CleanItem, *, client: str, idempotency_key: str | None) -> DedupKeys:
    """Keys of ``item``. Idempotency keys are scoped to the client (API key) that sent
    them, external ids to their source, as two scrapers may pick the same ones."""
    return DedupKeys(
        content_hash=_digest(item.title.lower(), item.description.lower()),
        url_key=_digest(item.url) if item.url else None,
        external_key=_digest(item.source or "", item.external_id) if item.external_id else None,
        idempotency_key=_digest(client, idempotency_key) if idempotency_key else None,
    )


@dataclass(frozen=True)
class StoredItem:
    item_id: str
    state: ItemState
    keys: DedupKeys


@dataclass(frozen=True)
class Claim:
    """What a request resolved to: a new item or an existing one, and how it matched."""

    item_id: str
    state: ItemState
    matched: MatchKind

    @property
    def is_duplicate(self) -> bool:
        """Same content or URL as an item already on the topic: not produced again."""
        return self.matched in ("content", "url") and self.state == "produced"

    @property
    def needs_produce(self) -> bool:
        """New, or a retry of an attempt the broker may not have acknowledged."""
        return self.state == "pending"


@dataclass(frozen=True)
class Resolution:
    claim: Claim
    insert: bool = False
    #: identity keys (column -> digest) to record on the matched item
    attach: Mapping[str, str] = field(default_factory=dict)


_PRIORITY: tuple[tuple[MatchKind, str], ...] = (
    ("idempotency_key", "idempotency_key"),
    ("external_id", "external_key"),
    ("content", "content_hash"),
    ("url", "url_key"),
)


def resolve(candidates: Iterable[StoredItem], keys: DedupKeys, new_id: str) -> Resolution:
    """Decide what a request with ``keys`` is, given the stored items sharing any key.

    An explicit identity (idempotency key, then external id) wins over content and URL
    matches: a retry must get its own id back even if its content was edited.
    """
    items = list(candidates)
    for kind, attr in _PRIORITY:
        wanted = getattr(keys, attr)
        if wanted is None:
            continue
        for item in items:
            if getattr(item.keys, attr) == wanted:
                claim = Claim(item.item_id, item.state, kind)
                attach = _identity_to_attach(item, keys, claim, items)
                return Resolution(claim, attach=attach)
    return Resolution(Claim(new_id, "pending", "new"), insert=True)


def _identity_to_attach(
    item: StoredItem, keys: DedupKeys, claim: Claim, candidates: Sequence[StoredItem]
) -> dict[str, str]:
    # When the answer is "accepted", a later retry with the same idempotency key or
    # external id must get that answer again, so the item learns those keys (unless
    # another item already holds one: keys are unique). A duplicate answer records
    # nothing: its retry is again a duplicate.
    if claim.is_duplicate:
        return {}
    attach = {}
    for attr in ("idempotency_key", "external_key"):
        wanted = getattr(keys, attr)
        if (
            wanted is not None
            and getattr(item.keys, attr) is None
            and all(getattr(other.keys, attr) != wanted for other in candidates)
        ):
            attach[attr] = wanted
    return attach


class DedupStore(Protocol):
    """Where items' keys and states live (SQL in production, a dict in unit tests)."""

    async def claim(self, requests: Sequence[tuple[DedupKeys, str]]) -> list[Claim]:
        """Resolve each (keys, id to use if new) in order, inserting new items as
        ``pending``, all in one transaction; later requests see earlier ones."""
        ...

    async def mark_produced(self, item_ids: Collection[str]) -> None: ...

    async def ping(self) -> bool: ...
