"""Message contracts, one module per topic. JSON Schemas are generated into ``schemas/``."""

from shared.messages.base import (
    CONSUMER_EXTRA,
    MAX_MESSAGE_BYTES,
    Message,
    MessageError,
    MessageErrorKind,
)
from shared.messages.classified import NEEDS_REVIEW, Classification
from shared.messages.content import ContentItem
from shared.messages.dlq import DeadLetter
from shared.messages.feedback import FeedbackLabel
from shared.messages.models import ModelEvent
from shared.messages.review import ReviewRequest

#: default topic name -> the message on it (topic names themselves are settings)
MESSAGES: dict[str, type[Message]] = {
    "content.raw": ContentItem,
    "content.classified": Classification,
    "review.requests": ReviewRequest,
    "content.dlq": DeadLetter,
    "feedback.labels": FeedbackLabel,
    "models.events": ModelEvent,
    "content.shadow": Classification,
}

__all__ = [
    "CONSUMER_EXTRA",
    "MAX_MESSAGE_BYTES",
    "MESSAGES",
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
