"""Adopting a database migrated by the single chain tagstream had before each owner kept its own.

That chain (revisions 0001..0006 in ``shared/db/migrations/versions``, one ``alembic_version``
table) created every owner's tables in turn. Its files are gone; what is kept here is the
order of its revision ids, and each :class:`~shared.db.owners.SchemaOwner` says which old
revision created which of its own (``replaces``). Converting writes each owner's version
table with the revision its tables are at and drops ``alembic_version``, in one transaction
under the migration lock; the owners' chains then carry on from there.
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from shared.db.migrate import alembic_config, lock_migrations
from shared.db.owners import SchemaOwner
from shared.db.session import make_engine, writer

LEGACY_VERSION_TABLE = "alembic_version"
# The old chain, oldest first; it was linear, so "at 0004" means 0001..0004 had all run.
LEGACY_CHAIN = ("0001", "0002", "0003", "0004", "0005", "0006")


def has_legacy_chain(url: str) -> bool:
    """Whether the database at ``url`` still has the old chain's version table."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return inspect(connection).has_table(LEGACY_VERSION_TABLE)
    finally:
        engine.dispose()


def adopt_legacy_chain(url: str, owners: Iterable[SchemaOwner]) -> None:
    """Convert the database at ``url`` from the old chain to ``owners``' chains; else a no-op.

    ``owners`` must be every owner of the old chain's tables: the old version table is
    dropped afterwards, so an owner left out would later try to create tables that exist.
    """
    owners = tuple(owners)
    engine = make_engine(url)
    try:
        # writer(): BEGIN IMMEDIATE on SQLite, so a second process converting at the same
        # time waits and then finds nothing left to convert.
        with writer(engine).begin() as connection:
            lock_migrations(connection)
            if not inspect(connection).has_table(LEGACY_VERSION_TABLE):
                return
            old = connection.execute(
                text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}")  # a constant  # nosec B608
            ).scalar_one_or_none()
            if old is not None:
                for owner in owners:
                    revision = owner_revision(owner, old)
                    if revision is not None:
                        _stamp(connection, owner, revision)
            connection.execute(text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))
    finally:
        engine.dispose()


def owner_revision(owner: SchemaOwner, old_revision: str) -> str | None:
    """The revision of ``owner``'s chain a database at ``old_revision`` of the old chain is at.

    None when the old chain had not yet reached the owner's first table.
    """
    if old_revision not in LEGACY_CHAIN:
        raise ValueError(
            f"alembic_version holds {old_revision!r}, not a revision of tagstream's old chain "
            f"{LEGACY_CHAIN}: this database was not made by tagstream"
        )
    reached = LEGACY_CHAIN[: LEGACY_CHAIN.index(old_revision) + 1]
    revision = None
    for old in reached:
        revision = owner.replaces.get(old, revision)
    return revision


def _stamp(connection: Connection, owner: SchemaOwner, revision: str) -> None:
    script = ScriptDirectory.from_config(alembic_config("", owner))
    context = MigrationContext.configure(connection, opts={"version_table": owner.version_table})
    context.stamp(script, revision)
