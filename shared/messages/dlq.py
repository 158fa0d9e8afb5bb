"""``content.dlq``: records that could not be processed, with their original bytes."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import AwareDatetime, Field

from shared.messages.base import Message


class DeadLetter(Message):
    """Enough to understand the failure and to replay the record after a fix."""

    schema_version: Literal[1] = 1
    stage: str = Field(description="Where it failed, e.g. 'classifier.decode'.")
    error: str = Field(description="Why, naming the field where there is one.")
    error_kind: str | None = Field(
        None,
        description=(
            "What is wrong, as a bounded label: empty, oversized, invalid_json, "
            "not_an_object, unsupported_version, invalid_field, or inference_error."
        ),
    )
    topic: str = Field(description="Topic the record came from (and is replayed to).")
    partition: int
    offset: int
    key_b64: str | None = Field(None, description="Original key, base64.")
    value_b64: str = Field(description="Original value bytes, base64.")
    failed_at: AwareDatetime

    @property
    def original_value(self) -> bytes:
        return base64.b64decode(self.value_b64)

    @property
    def original_key(self) -> bytes | None:
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else None

    @staticmethod
    def b64(data: bytes | None) -> str | None:
        return base64.b64encode(data).decode() if data is not None else None
