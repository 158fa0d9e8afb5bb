"""Who owns which tables: light enough to import anywhere (no Alembic until migrating).

Each owner's ``tables.py`` declares its :class:`SchemaOwner`; :mod:`shared.db.migrate`
runs and checks the migrations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

UPGRADE_HINT = "run `tagstream db upgrade`"


@dataclass(frozen=True, eq=False)
class SchemaOwner:
    """An owner of tables and the chain of migrations that creates them.

    ``replaces`` maps revisions of the retired single chain (shared/db/migrations/versions,
    0001..0006) to the revision of this chain that created the same tables, so a database
    migrated by the old chain is adopted without recreating anything (see
    :mod:`shared.db.legacy`).
    """

    name: str
    versions_dir: Path
    replaces: Mapping[str, str] = field(default_factory=dict)

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"


class SchemaNotUpgraded(RuntimeError):
    """The database is not at the schema this code needs: ``tagstream db upgrade`` fixes it."""
