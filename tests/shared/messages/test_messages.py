from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.messages import ContentItem, DeadLetter, MessageError, MessageErrorKind
from shared.messages.schemas import SCHEMA_DIR, render

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def item(**changes: object) -> dict[str, object]:
    return {
        "schema_version": 1,
        "item_id": "a1",
        "title": "t",
        "received_at": NOW.isoformat(),
        **changes,
    }


def test_round_trip() -> None:
    original = ContentItem(item_id="a1", title="t", url="https://x.org", received_at=NOW)
    assert ContentItem.decode(original.encode()) == original


@pytest.mark.parametrize(
    ("raw", "reason", "kind"),
    [
        (b"{not json", "invalid JSON", MessageErrorKind.INVALID_JSON),
        (b"\xff\xfe", "invalid JSON", MessageErrorKind.INVALID_JSON),
        (b"[1, 2]", "a JSON object is expected", MessageErrorKind.NOT_AN_OBJECT),
        (
            json.dumps(item(schema_version=2)).encode(),
            "unsupported schema_version 2",
            MessageErrorKind.UNSUPPORTED_VERSION,
        ),
        (
            json.dumps(item(schema_version=None)).encode(),
            "unsupported schema_version None",
            MessageErrorKind.UNSUPPORTED_VERSION,
        ),
        (json.dumps(item(title="")).encode(), "invalid title", MessageErrorKind.INVALID_FIELD),
        (
            json.dumps(item(received_at="yesterday")).encode(),
            "invalid received_at",
            MessageErrorKind.INVALID_FIELD,
        ),
        (None, "empty record", MessageErrorKind.EMPTY),
    ],
)
def test_bad_records_raise_message_error_with_reason(
    raw: bytes | None, reason: str, kind: MessageErrorKind
) -> None:
    with pytest.raises(MessageError, match=reason) as raised:
        ContentItem.decode(raw)
    assert raised.value.kind is kind


def test_a_consumer_ignores_fields_it_does_not_know() -> None:
    """Within a supported schema_version; the unknown version above is still refused."""
    raw = json.dumps(item(surprise=1, nested_surprise={"a": [1]})).encode()

    assert ContentItem.decode(raw) == ContentItem(item_id="a1", title="t", received_at=NOW)


def test_producers_stay_strict_about_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="surprise"):
        ContentItem(item_id="a1", title="t", received_at=NOW, **{"surprise": 1})
    with pytest.raises(ValidationError, match="surprise"):
        ContentItem.model_validate(item(surprise=1))
    assert ContentItem.model_json_schema()["additionalProperties"] is False


def test_oversized_record_is_refused_before_parsing() -> None:
    with pytest.raises(MessageError, match="oversized") as raised:
        ContentItem.decode(b"x" * 2000, max_bytes=1000)
    assert raised.value.kind is MessageErrorKind.OVERSIZED


def test_dead_letter_keeps_original_bytes() -> None:
    letter = DeadLetter(
        stage="s",
        error="e",
        topic="t",
        partition=0,
        offset=1,
        key_b64=DeadLetter.b64(b"k"),
        value_b64=DeadLetter.b64(b"\x00raw") or "",
        failed_at=NOW,
    )
    again = DeadLetter.decode(letter.encode())
    assert again.original_value == b"\x00raw"
    assert again.original_key == b"k"


def test_committed_json_schemas_match_the_models() -> None:
    """Regenerate with `python -m shared.messages.schemas` when a message changes."""
    for name, text in render().items():
        path = SCHEMA_DIR / name
        assert path.is_file(), f"{path} missing: run python -m shared.messages.schemas"
        assert path.read_text() == text, (
            f"{name} drifted: run python -m shared.messages.schemas (it refuses breaking changes)"
        )
