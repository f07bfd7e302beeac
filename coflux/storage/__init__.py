"""Durable history of each project: SQLAlchemy Core over SQLite (default) or PostgreSQL."""

from coflux.storage.projects import list_projects, schema_name
from coflux.storage.store import Batch, SqlStore, dumps

__all__ = ["Batch", "SqlStore", "dumps", "list_projects", "schema_name"]
