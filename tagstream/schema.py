"""Every owner of tables, in the order ``tagstream db upgrade`` migrates them.

Each owner keeps its migrations beside its tables (``<owner>/migrations/``); this is the one
place that knows them all, which is why it lives in the application layer.
"""

from __future__ import annotations

from services.feedback.tables import SCHEMA as FEEDBACK
from services.ingest.tables import SCHEMA as INGEST
from services.review.tables import SCHEMA as REVIEW
from services.rollout.tables import SCHEMA as ROLLOUT
from shared.db import migrate
from shared.db.owners import SchemaOwner
from shared.registry.tables import SCHEMA as REGISTRY

# The registry first: it is the one every other service reads (no foreign key crosses
# owners, so the order only decides which owner is ready first).
SCHEMA_OWNERS: tuple[SchemaOwner, ...] = (REGISTRY, INGEST, REVIEW, FEEDBACK, ROLLOUT)


def upgrade_all(url: str) -> None:
    """Migrate every owner's tables at ``url`` to its head (converting a pre-split database)."""
    migrate.upgrade_all(url, SCHEMA_OWNERS)


def revisions(url: str) -> dict[str, str | None]:
    """Each owner's current revision at ``url`` (None: never migrated)."""
    return {owner.name: migrate.current(url, owner) for owner in SCHEMA_OWNERS}
