"""The topic catalogue: every topic tagstream uses, its name setting, message and key.

One declaration that producers, consumers, the CLI and the schema generator read; the
names themselves are settings (``TAGSTREAM_TOPIC_RAW`` …) so deployments can prefix them.

Topics are created only by ``tagstream topics create``, the local runner ``tagstream up``,
the init job, or Strimzi in Kubernetes: never by a service, whose client may lack the
right to create them in production and whose guess of partitions would be wrong there.

Keys: every record of an item is keyed by its item id, so one item's records stay on one
partition in order, and consumers dedup on it. ``content.classified`` holds every
decision of an item in order: the model's, then any reviewer's (route ``human``, which
replaces it; an undo's or audit's correction replaces that). Downstream keeps the latest
decision per item id (a model decision never replacing a human one: a re-decided batch
can repeat it late), so the topic can be log-compacted in production. The feedback
service stores each model version's prediction as it arrives (human decisions are not
predictions), so compaction only limits a replay from the beginning, which sees the
latest decision per item only (for a reviewed item the human one, so a rebuilt store
would lack the model's prediction of labelled items); keep ``min.compaction.lag.ms``
above the feedback consumer's worst lag.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.kafka.clients import client_options
from shared.messages import (
    Classification,
    ContentItem,
    DeadLetter,
    FeedbackLabel,
    Message,
    ModelEvent,
    ReviewRequest,
)
from shared.settings import Settings


@dataclass(frozen=True)
class Topic:
    """One topic: the setting naming it, its message and its key."""

    setting: str
    message: type[Message]
    #: The message field the record key is (UTF-8), or a description when it is not one.
    key: str

    @property
    def default(self) -> str:
        """The name when no setting overrides it (the setting's default)."""
        default: str = Settings.model_fields[self.setting].default
        return default

    def name(self, settings: Settings) -> str:
        """This topic's name under ``settings``."""
        name: str = getattr(settings, self.setting)
        return name


RAW = Topic("topic_raw", ContentItem, key="item_id")
#: Every item's decisions, model and human; downstream keeps the latest per item id.
CLASSIFIED = Topic("topic_classified", Classification, key="item_id")
REVIEW = Topic("topic_review", ReviewRequest, key="item_id")
FEEDBACK = Topic("topic_feedback", FeedbackLabel, key="item_id")
MODELS = Topic("topic_models", ModelEvent, key="model_name")
#: A dead letter keeps the key of the record that failed (so a replay lands where it was).
DLQ = Topic("topic_dlq", DeadLetter, key="the original record's key")
#: While a canary runs, the answer of the version that did not decide each item (the
#: canary's in shadow mode): recorded, never acted on; feedback pairs it with the decision.
SHADOW = Topic("topic_shadow", Classification, key="item_id")

#: Every topic, in pipeline order.
CATALOGUE: tuple[Topic, ...] = (RAW, CLASSIFIED, REVIEW, FEEDBACK, MODELS, DLQ, SHADOW)


def topic_names(settings: Settings) -> tuple[str, ...]:
    """Every topic tagstream uses under ``settings``, in pipeline order."""
    return tuple(topic.name(settings) for topic in CATALOGUE)


async def ensure_topics(settings: Settings, topics: tuple[str, ...] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created.

    For the application layer (CLI, local runner, init job) and test fixtures only.
    """
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in (topics or topic_names(settings)) if t not in existing]
        if missing:
            specs = [
                NewTopic(t, settings.kafka_partitions, settings.kafka_replication_factor)
                for t in missing
            ]
            # another process may create them first: that is what we wanted
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(specs)
        return missing
    finally:
        await admin.close()
