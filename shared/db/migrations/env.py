"""Alembic environment of every owner's chain: builds the engine with shared.db.session so
SQLite and PostgreSQL get the same connection settings as the application, and keeps each
owner's revision in its own version table (shared.db.migrate.alembic_config sets both)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from shared.db.base import UtcDateTime
from shared.db.migrate import lock_migrations
from shared.db.session import make_engine, normalize_url, writer

config = context.config
# Only autogenerate needs the tables' metadata; the caller passes it (after importing the
# owner's table module) so shared/ never imports services/.
target_metadata = config.attributes.get("target_metadata")
version_table = config.attributes.get("version_table", "alembic_version")


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: use shared.db.migrate.alembic_config(url, owner)")
    return str(url)


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations must not import application types (they change; migrations must not), so
    # UtcDateTime is written as the column type it stores.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _include_name(name: str | None, type_: str, parents: Any) -> bool:
    # Other owners' tables and version tables share the database: autogenerate for one
    # owner must neither drop the former nor see the latter as unknown tables.
    if type_ != "table" or name is None:
        return True
    if name.startswith("alembic_version"):
        return False
    return target_metadata is None or name in target_metadata.tables


def run_migrations_offline() -> None:
    """Render the SQL instead of running it (``alembic upgrade --sql``)."""
    url = normalize_url(_database_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        version_table=version_table,
        include_name=_include_name,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_database_url())
    try:
        # BEGIN IMMEDIATE on SQLite: a second process migrating at the same time waits for
        # the first instead of failing when its read snapshot turns out to be stale.
        with writer(engine).connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                version_table=version_table,
                include_name=_include_name,
                # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
                render_item=_render_item,
            )
            with context.begin_transaction():
                # Processes migrating together would otherwise race to create the same
                # tables; the second waits here and then finds the schema up to date.
                lock_migrations(connection)
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
