"""Turning what a scraper sent into a clean item, or into field-level reasons why not.

Everything here is pure: no I/O, no settings read. Lengths are checked after
normalisation (NFKC, control and bidi characters removed, white space collapsed) because
the normalised text is what travels downstream; a field far over its limit as sent is
refused before normalising (``RAW_CHARS_FACTOR``), so the work per field stays bounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from services.ingest.schemas import ItemIn
from services.ingest.settings import IngestSettings
from shared.http.errors import FieldError, validation_errors
from shared.serving.text import normalise

DEFAULT_PORTS = {"http": 80, "https": 443}
RAW_CHARS_FACTOR = 4
"""A field longer than this many times its limit as sent is refused before normalising.

Normalising (NFKC, then the regular expressions) costs time in proportion to the input,
and NFKC can expand a character up to 18-fold: without this cap a 1 MB title would be
normalised in full only to be refused. Four times leaves room for what normalising
legitimately removes (runs of white space, control characters, decomposed accents).
"""


class ItemRejected(ValueError):
    """An item (or a whole request) refused for the reasons in ``errors``."""

    def __init__(self, errors: Sequence[FieldError], status_code: int = 422) -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = list(errors)
        self.status_code = status_code


@dataclass(frozen=True)
class ItemLimits:
    max_title_chars: int = 300
    max_description_chars: int = 5000
    max_url_chars: int = 2048
    max_source_chars: int = 200
    max_external_id_chars: int = 200

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> ItemLimits:
        return cls(
            max_title_chars=settings.max_title_chars,
            max_description_chars=settings.max_description_chars,
            max_url_chars=settings.ingest_max_url_chars,
            max_source_chars=settings.ingest_max_source_chars,
            max_external_id_chars=settings.ingest_max_external_id_chars,
        )


@dataclass(frozen=True)
class CleanItem:
    """A valid, normalised item; ``url`` is canonical."""

    title: str
    description: str = ""
    url: str | None = None
    source: str | None = None
    external_id: str | None = None
    created_at: datetime | None = None


class _Invalid(ValueError):
    def __init__(self, reason: str, category: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.category = category


def parse_item(raw: object, limits: ItemLimits) -> CleanItem:
    """Validate a raw JSON value (one element of a batch) into a clean item."""
    try:
        item = ItemIn.model_validate(raw)
    except ValidationError as exc:
        raise ItemRejected(validation_errors(exc.errors(), whole="item", located=False)) from None
    return clean_item(item, limits)


def clean_item(item: ItemIn, limits: ItemLimits) -> CleanItem:
    """Normalise every field of ``item`` and check the limits; collects every error."""
    errors: list[FieldError] = []

    def text(field: str, value: str | None, limit: int) -> str | None:
        if value is None:
            return None
        if len(value) > RAW_CHARS_FACTOR * limit:
            errors.append(
                FieldError(
                    field,
                    f"must be at most {limit} characters (got {len(value)} as sent)",
                    f"{field}_too_long",
                )
            )
            return None
        try:
            cleaned = _clean_text(value)
        except _Invalid as exc:
            errors.append(FieldError(field, exc.reason, exc.category))
            return None
        if len(cleaned) > limit:
            errors.append(
                FieldError(
                    field,
                    f"must be at most {limit} characters (got {len(cleaned)})",
                    f"{field}_too_long",
                )
            )
            return None
        return cleaned

    title = text("title", item.title, limits.max_title_chars)
    if title == "":
        errors.append(
            FieldError(
                "title",
                "must not be empty (after removing control characters and white space)",
                "title_empty",
            )
        )
    description = text("description", item.description, limits.max_description_chars)
    source = text("source", item.source, limits.max_source_chars)
    external_id = text("external_id", item.external_id, limits.max_external_id_chars)
    url = text("url", item.url, limits.max_url_chars)
    canonical: str | None = None
    if url:
        try:
            canonical = canonical_url(url)
        except _Invalid as exc:
            errors.append(FieldError("url", exc.reason, exc.category))
    created_at: datetime | None = None
    if item.created_at is not None:
        try:
            created_at = _as_utc(item.created_at)
        except OverflowError:
            errors.append(
                FieldError("created_at", "is out of the representable range", "bad_created_at")
            )
    if errors or not title:
        raise ItemRejected(errors)
    return CleanItem(
        title=title,
        description=description or "",
        url=canonical,
        source=source or None,
        external_id=external_id or None,
        created_at=created_at,
    )


def _clean_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("contains invalid unicode (a lone surrogate)", "bad_unicode") from None
    return normalise(value)


def _as_utc(value: datetime) -> datetime:
    # A naive timestamp is taken as UTC: downstream consumers compare aware datetimes.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def canonical_url(value: str) -> str:
    """The URL duplicates are screened by, and the one sent downstream.

    Scheme and host lowercased, default port, fragment, trailing slash and ``utm_*``
    parameters dropped; everything else (path case, parameter order) kept as sent.
    """
    if any(ch.isspace() for ch in value):
        raise _Invalid("must not contain white space", "bad_url")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise _Invalid("is not a valid URL", "bad_url") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _Invalid("scheme must be http or https", "bad_url_scheme")
    if not host:
        raise _Invalid("must include a host", "bad_url")
    if parts.username is not None or parts.password is not None:
        raise _Invalid("must not contain credentials", "bad_url")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    query = "&".join(
        pair
        for pair in parts.query.split("&")
        if pair and not pair.split("=", 1)[0].lower().startswith("utm_")
    )
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), query, ""))
