"""Message contracts, one module per topic. JSON Schemas are generated into ``schemas/``.

Which message travels on which topic is the topic catalogue's (``shared.kafka.topics``)."""

from shared.messages.base import (
    CONSUMER_EXTRA,
    MAX_MESSAGE_BYTES,
    Message,
    MessageError,
    MessageErrorKind,
)
from shared.messages.classified import HUMAN, NEEDS_REVIEW, Classification
from shared.messages.content import ContentItem
from shared.messages.dlq import DeadLetter
from shared.messages.feedback import FeedbackLabel
from shared.messages.models import ModelEvent
from shared.messages.review import ReviewRequest

__all__ = [
    "CONSUMER_EXTRA",
    "HUMAN",
    "MAX_MESSAGE_BYTES",
    "NEEDS_REVIEW",
    "Classification",
    "ContentItem",
    "DeadLetter",
    "FeedbackLabel",
    "Message",
    "MessageError",
    "MessageErrorKind",
    "ModelEvent",
    "ReviewRequest",
]
