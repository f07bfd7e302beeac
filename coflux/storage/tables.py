"""The schema of one project's database, as SQLAlchemy Core tables.

History is append-only: a run, its steps, executions, assignments and results are inserted once and
never updated, so the state of every execution can be rebuilt after a restart from what was committed.
Workspaces and registered targets are the only rows that change in place. Assets are history too: an
asset, its entries (each a file's path and the blob holding its bytes) and each restoration of it
are written once.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(512), nullable=False, unique=True),
    Column("base_id", Integer, ForeignKey("workspaces.id"), nullable=True),
    Column("state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
)

targets = Table(
    "targets",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), primary_key=True),
    Column("module", String(512), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("definition", Text, nullable=False),
    Column("registered_at", Float, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("parent_execution_id", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
)
Index("ix_runs_parent", runs.c.parent_execution_id)

steps = Table(
    "steps",
    metadata,
    Column("step_id", String(48), primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("parent_execution_id", String(64), nullable=True),
    Column("call_index", Integer, nullable=True),
    Column("module", String(512), nullable=False),
    Column("target", String(512), nullable=False),
    Column("type", String(16), nullable=False),
    Column("arguments", Text, nullable=False),
    Column("options", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("cache_key", String(64), nullable=True),
    Column("memo_key", String(64), nullable=True),
    UniqueConstraint("parent_execution_id", "call_index", name="uq_steps_parent_call"),
)
Index("ix_steps_run", steps.c.run_id)
Index(
    "ix_steps_cache_key",
    steps.c.cache_key,
    sqlite_where=steps.c.cache_key.is_not(None),
    postgresql_where=steps.c.cache_key.is_not(None),
)
Index(
    "ix_steps_memo",
    steps.c.run_id,
    steps.c.memo_key,
    sqlite_where=steps.c.memo_key.is_not(None),
    postgresql_where=steps.c.memo_key.is_not(None),
)

executions = Table(
    "executions",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("step_id", String(48), ForeignKey("steps.step_id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False),
    Column("execute_after", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("retry", Integer, nullable=True),
    Column("rerun_parents", Boolean, nullable=True),
    Column("fixed_step", String(48), nullable=True),
)
Index("ix_executions_step", executions.c.step_id)

assignments = Table(
    "assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", String(64), ForeignKey("executions.execution_id"), nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("assigned_at", Float, nullable=False),
)
Index("ix_assignments_execution", assignments.c.execution_id)

results = Table(
    "results",
    metadata,
    Column("execution_id", String(64), ForeignKey("executions.execution_id"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("value", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("cached_from", String(64), nullable=True),
)

logs = Table(
    "logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", String(64), nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("level", String(16), nullable=False),
    Column("message", Text, nullable=False),
)
Index("ix_logs_execution", logs.c.execution_id)

cache_entries = Table(
    "cache_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cache_key", String(64), nullable=False),
    Column("workspace_id", Integer, nullable=False),
    Column("execution_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)
Index(
    "ix_cache_entries_lookup",
    cache_entries.c.cache_key,
    cache_entries.c.workspace_id,
    cache_entries.c.created_at,
)

assets = Table(
    "assets",
    metadata,
    Column("asset_id", String(32), primary_key=True),
    Column("execution_id", String(64), ForeignKey("executions.execution_id"), nullable=False),
    Column("name", Text, nullable=True),
    Column("created_at", Float, nullable=False),
)
Index("ix_assets_execution", assets.c.execution_id)

asset_entries = Table(
    "asset_entries",
    metadata,
    Column("asset_id", String(32), ForeignKey("assets.asset_id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("blob_key", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(255), nullable=False),
)

asset_restorations = Table(
    "asset_restorations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset_id", String(32), ForeignKey("assets.asset_id"), nullable=False),
    Column("execution_id", String(64), nullable=False),
    Column("restored_at", Float, nullable=False),
)
Index("ix_asset_restorations_asset", asset_restorations.c.asset_id)
