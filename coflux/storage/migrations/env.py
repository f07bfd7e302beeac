"""Alembic environment: always run programmatically by coflux.storage, on a connection it provides."""

from __future__ import annotations

from alembic import context

from coflux.storage.tables import metadata

connection = context.config.attributes["connection"]
schema = context.config.attributes.get("schema")
if schema is not None:
    # ALTER TABLE and CREATE INDEX don't go through SQLAlchemy's schema translation: name the
    # project's schema as the place for unqualified names.
    connection.exec_driver_sql(f'SET search_path TO "{schema}"')

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=schema,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
