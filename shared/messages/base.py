"""What every message on a topic shares: JSON, a schema version, strict writing, lenient reading.

Producers are strict: building a message with a field the model does not declare fails
(``extra="forbid"``), and the committed JSON Schemas say so. Consumers are lenient within
a supported ``schema_version``: :meth:`Message.decode` drops fields it does not know, at
any depth, so during a rolling deploy a consumer still on the old code reads what a newer
producer sends after adding an optional field. A version the consumer does not support
is still refused.

Decoding never raises anything but ``MessageError``, whose ``reason`` is what the
dead-letter entry records, so a consumer can route any bad record to the DLQ and go on.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, ClassVar, Final, Self

from pydantic import BaseModel, ConfigDict, ValidationError

MAX_MESSAGE_BYTES = 1_000_000
CONSUMER_EXTRA: Final = "ignore"
"""What a consumer does with fields it does not know (``model_validate*(extra=...)``): drop."""


class MessageErrorKind(StrEnum):
    """What is wrong with a record, as a bounded label (metrics); the reason text is not."""

    EMPTY = "empty"
    OVERSIZED = "oversized"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_VERSION = "unsupported_version"
    INVALID_FIELD = "invalid_field"


class MessageError(ValueError):
    """A record that cannot be decoded; ``reason`` is short and names what is wrong."""

    def __init__(self, reason: str, *, kind: MessageErrorKind) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class Message(BaseModel):
    """Base of every topic's message: frozen, strict about unknown fields when built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    SUPPORTED_VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    def encode(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def decode(cls, raw: bytes | None, max_bytes: int = MAX_MESSAGE_BYTES) -> Self:
        """The message in ``raw``, ignoring fields this code does not know (see the module)."""
        if raw is None:
            raise MessageError("empty record (no value)", kind=MessageErrorKind.EMPTY)
        if len(raw) > max_bytes:
            raise MessageError(
                f"oversized: {len(raw)} bytes > {max_bytes}", kind=MessageErrorKind.OVERSIZED
            )
        try:
            data: Any = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MessageError(f"invalid JSON: {exc}", kind=MessageErrorKind.INVALID_JSON) from None
        if not isinstance(data, dict):
            raise MessageError(
                "invalid message: a JSON object is expected", kind=MessageErrorKind.NOT_AN_OBJECT
            )
        version = data.get("schema_version")
        if version not in cls.SUPPORTED_VERSIONS:
            raise MessageError(
                f"unsupported schema_version {version!r} for {cls.__name__} "
                f"(supported: {sorted(cls.SUPPORTED_VERSIONS)})",
                kind=MessageErrorKind.UNSUPPORTED_VERSION,
            )
        try:
            # extra="ignore" overrides the strict config for this read only, nested
            # models included; building and encoding stay strict.
            return cls.model_validate(data, extra=CONSUMER_EXTRA)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "message"
            raise MessageError(
                f"invalid {field}: {first['msg']}", kind=MessageErrorKind.INVALID_FIELD
            ) from None
