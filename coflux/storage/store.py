"""One project's storage: a held SQLAlchemy Core connection, written by one batch per transaction.

The orchestrator is the only writer of a project, so the store keeps one connection open and applies a
whole :class:`Batch` of events in one transaction (group commit). SQLite runs in WAL mode with
``synchronous=NORMAL``: a commit survives the process being killed. PostgreSQL keeps each project in its
own schema through SQLAlchemy's schema translation.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from coflux.errors import StorageError
from coflux.storage import tables as t
from coflux.storage.assets import AssetQueries
from coflux.storage.faults import storage_error
from coflux.storage.projects import open_project

Row = dict[str, Any]

_MIGRATIONS = Path(__file__).parent / "migrations"
# Built once: SQLAlchemy memoizes a statement's cache key, which a fresh insert() would recompute.
_HISTORY = (
    t.runs,
    t.steps,
    t.executions,
    t.assignments,
    t.results,
    t.logs,
    t.targets,
    t.cache_entries,
    t.assets,
    t.asset_entries,
    t.asset_restorations,
)
_INSERT = {table.name: table.insert() for table in _HISTORY}
# Nullable columns a row may leave out (the driver needs every named parameter).
_DEFAULTS: dict[str, Row] = {
    table.name: {c.name: None for c in table.columns if c.nullable} for table in _HISTORY
}
_SQLITE_INSERT = {
    table.name: "INSERT INTO {} ({}) VALUES ({})".format(
        table.name,
        ", ".join(c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)),
        ", ".join(":" + c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)),
    )
    for table in _HISTORY
}


@dataclass
class Batch:
    """Rows to write in one transaction, in dependency order."""

    workspaces: list[Row] = field(default_factory=list)
    workspace_updates: list[Row] = field(default_factory=list)
    targets: list[Row] = field(default_factory=list)
    runs: list[Row] = field(default_factory=list)
    steps: list[Row] = field(default_factory=list)
    executions: list[Row] = field(default_factory=list)
    assignments: list[Row] = field(default_factory=list)
    results: list[Row] = field(default_factory=list)
    logs: list[Row] = field(default_factory=list)
    cache_entries: list[Row] = field(default_factory=list)
    assets: list[Row] = field(default_factory=list)
    asset_entries: list[Row] = field(default_factory=list)
    asset_restorations: list[Row] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in _BATCH_FIELDS)


_BATCH_FIELDS = tuple(f.name for f in fields(Batch))


@contextmanager
def _wrapped(action: str) -> Iterator[None]:
    try:
        yield
    except StorageError:
        raise
    except Exception as err:  # the driver's own errors too (OverflowError, ValueError, ...)
        raise storage_error(f"{action} failed: {err.__class__.__name__}: {err}", err) from err


def _without_nul(row: Row) -> Row:
    """PostgreSQL refuses NUL characters in text; both backends store U+FFFD in their place."""
    message = row["message"]
    return {**row, "message": message.replace("\x00", "\ufffd")} if "\x00" in message else row


class SqlStore(AssetQueries):
    """The storage of one project. Not thread-safe: used from the orchestrator's loop only."""

    def __init__(self, engine: Engine, schema: str | None) -> None:
        self._engine = engine
        self._schema = schema
        options: dict[str, Any] = {}
        if schema is not None:
            options["schema_translate_map"] = {None: schema}
        try:
            with _wrapped("opening the database"):
                self._conn: Connection = engine.connect().execution_options(**options)
                self._migrate()
        except StorageError:
            engine.dispose()
            raise
        # On SQLite the append-only history goes straight through the driver: SQLAlchemy's
        # per-statement work is most of the cost of a small insert, and these run for every step.
        self._raw: sqlite3.Connection | None = None
        if engine.dialect.name == "sqlite":
            driver = self._conn.connection.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            self._raw = driver

    @classmethod
    def open(cls, project: str, data_dir: Path, database_url: str | None = None) -> SqlStore:
        """The project's storage, created if it has none. A creation happens whole or not at all, so
        a failed one (a full disk, say) leaves nothing that would later pass for the project. Errors
        name the project and the cause; no space left is :class:`~coflux.errors.StorageFull`."""
        return open_project(project, data_dir, database_url, cls)

    def _migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = self._conn
        config.attributes["schema"] = self._schema
        command.upgrade(config, "head")
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()

    # -- writing -------------------------------------------------------------------------------

    def apply(self, batch: Batch) -> None:
        """Write the batch in one transaction; nothing of it is written if any part fails."""
        conn = self._conn
        with _wrapped("writing a batch"):
            try:
                if batch.workspaces:
                    conn.execute(t.workspaces.insert(), batch.workspaces)
                for row in batch.workspace_updates:
                    values = {k: v for k, v in row.items() if k != "id"}
                    conn.execute(t.workspaces.update().where(t.workspaces.c.id == row["id"]).values(**values))
                self._upsert_targets(batch.targets)
                for name, rows in (
                    ("runs", batch.runs),
                    ("steps", batch.steps),
                    ("executions", batch.executions),
                    ("assignments", batch.assignments),
                    ("results", batch.results),
                    ("logs", [_without_nul(row) for row in batch.logs]),
                    ("cache_entries", batch.cache_entries),
                    ("assets", batch.assets),
                    ("asset_entries", batch.asset_entries),
                    ("asset_restorations", batch.asset_restorations),
                ):
                    if rows:
                        self._insert(name, rows)
                self._commit()
            except BaseException:
                self._rollback()
                raise

    def _insert(self, table: str, rows: list[Row]) -> None:
        if self._raw is None:
            self._conn.execute(_INSERT[table], rows)
        else:
            defaults = _DEFAULTS[table]
            # A generator: each row's parameters are freed once bound, so a large batch doesn't
            # hold thousands of young dicts (and set off the garbage collector) while it is written.
            self._raw.executemany(_SQLITE_INSERT[table], ({**defaults, **row} for row in rows))

    def _commit(self) -> None:
        if self._conn.in_transaction():
            self._conn.commit()  # also commits what went through the driver on the same connection
        if self._raw is not None:
            self._raw.commit()

    def _rollback(self) -> None:
        # Unconditionally: after a failed commit (a full disk) SQLAlchemy holds an invalid
        # transaction that in_transaction() doesn't report, and every later statement would fail;
        # it leaves SQLite's own transaction open too, whose rows the next commit would write.
        self._conn.rollback()
        if self._raw is not None:
            self._raw.rollback()

    def _upsert_targets(self, rows: list[Row]) -> None:
        latest = {(r["workspace_id"], r["module"], r["name"]): r for r in rows}  # the last one wins
        rows = list(latest.values())
        for row in rows:
            self._conn.execute(
                t.targets.delete().where(
                    (t.targets.c.workspace_id == row["workspace_id"])
                    & (t.targets.c.module == row["module"])
                    & (t.targets.c.name == row["name"])
                )
            )
        if rows:
            self._conn.execute(_INSERT["targets"], rows)

    # -- reading -------------------------------------------------------------------------------

    def _all(self, statement: Any) -> list[Row]:
        with _wrapped("reading"):
            rows = [dict(r._mapping) for r in self._conn.execute(statement)]
            self._conn.commit()
            return rows

    def workspaces(self) -> list[Row]:
        return self._all(sa.select(t.workspaces).order_by(t.workspaces.c.id))

    def targets(self) -> list[Row]:
        return self._all(sa.select(t.targets))

    def unfinished(self) -> tuple[list[Row], list[Row], dict[str, tuple[str, float]]]:
        """Executions without a result, their steps, and the session each was last assigned to
        (with when)."""
        pending = (
            sa.select(t.executions)
            .outerjoin(t.results, t.results.c.execution_id == t.executions.c.execution_id)
            .where(t.results.c.execution_id.is_(None))
        )
        executions = self._all(pending)
        step_ids = sorted({e["step_id"] for e in executions})
        steps = self._all(sa.select(t.steps).where(t.steps.c.step_id.in_(step_ids))) if step_ids else []
        assigned: dict[str, tuple[str, float]] = {}
        ids = [e["execution_id"] for e in executions]
        if ids:
            query = (
                sa.select(
                    t.assignments.c.execution_id, t.assignments.c.session_id, t.assignments.c.assigned_at
                )
                .where(t.assignments.c.execution_id.in_(ids))
                .order_by(t.assignments.c.id)
            )
            for row in self._all(query):
                assigned[row["execution_id"]] = (row["session_id"], row["assigned_at"])
        return steps, executions, assigned

    def attempts_of(self, step_ids: list[str]) -> dict[str, list[tuple[int, int]]]:
        """Every execution of these steps as (attempt, workspace id), in attempt order."""
        if not step_ids:
            return {}
        query = (
            sa.select(t.executions.c.step_id, t.executions.c.attempt, t.executions.c.workspace_id)
            .where(t.executions.c.step_id.in_(step_ids))
            .order_by(t.executions.c.attempt)
        )
        found: dict[str, list[tuple[int, int]]] = {}
        for row in self._all(query):
            found.setdefault(row["step_id"], []).append((row["attempt"], row["workspace_id"]))
        return found

    def cache_hit(self, key: str, workspace_id: int) -> Row | None:
        """The newest execution in the workspace that computed a result for this cache key:
        execution_id, created_at."""
        query = (
            sa.select(t.cache_entries.c.execution_id, t.cache_entries.c.created_at)
            .where((t.cache_entries.c.cache_key == key) & (t.cache_entries.c.workspace_id == workspace_id))
            .order_by(t.cache_entries.c.created_at.desc())
            .limit(1)
        )
        rows = self._all(query)
        return rows[0] if rows else None

    def cache_source(self, key: str, execution_id: str) -> Row | None:
        """The cache entry that this execution wrote for this key, if any: workspace_id, created_at."""
        query = sa.select(t.cache_entries.c.workspace_id, t.cache_entries.c.created_at).where(
            (t.cache_entries.c.cache_key == key) & (t.cache_entries.c.execution_id == execution_id)
        )
        rows = self._all(query.limit(1))
        return rows[0] if rows else None

    def spawned_by(self, run_id: str) -> list[Row]:
        """Runs spawned by executions of this run: run_id, parent_execution_id, created_at."""
        query = (
            sa.select(t.runs.c.run_id, t.runs.c.parent_execution_id, t.runs.c.created_at)
            .where(t.runs.c.parent_execution_id.like(run_id + ":%"))
            .order_by(t.runs.c.created_at)
        )
        return self._all(query)

    def memo_steps(self, run_id: str) -> dict[str, str]:
        """Memo key -> step id, for the memoised steps of a run (the first step of each key)."""
        query = (
            sa.select(t.steps.c.memo_key, t.steps.c.step_id)
            .where((t.steps.c.run_id == run_id) & t.steps.c.memo_key.is_not(None))
            .order_by(t.steps.c.number)
        )
        found: dict[str, str] = {}
        for row in self._all(query):
            found.setdefault(row["memo_key"], row["step_id"])
        return found

    def runs_of(self, run_ids: list[str]) -> list[Row]:
        return self._all(sa.select(t.runs).where(t.runs.c.run_id.in_(run_ids))) if run_ids else []

    def step_counts(self, run_ids: list[str]) -> dict[str, int]:
        if not run_ids:
            return {}
        query = (
            sa.select(t.steps.c.run_id, sa.func.max(t.steps.c.number).label("n"))
            .where(t.steps.c.run_id.in_(run_ids))
            .group_by(t.steps.c.run_id)
        )
        return {r["run_id"]: int(r["n"]) for r in self._all(query)}

    def recent_runs(
        self, workspace_id: int, module: str | None = None, target: str | None = None, limit: int = 20
    ) -> list[Row]:
        """The newest top-level runs started in a workspace (optionally of one workflow): run_id,
        created_at, and the root step's module and target."""
        query = (
            sa.select(t.runs.c.run_id, t.runs.c.created_at, t.steps.c.module, t.steps.c.target)
            .join(t.steps, (t.steps.c.run_id == t.runs.c.run_id) & (t.steps.c.number == 1))
            .where((t.runs.c.workspace_id == workspace_id) & t.runs.c.parent_execution_id.is_(None))
        )
        if module is not None:
            query = query.where(t.steps.c.module == module)
        if target is not None:
            query = query.where(t.steps.c.target == target)
        return self._all(query.order_by(t.runs.c.created_at.desc()).limit(limit))

    def run(self, run_id: str) -> Row | None:
        rows = self._all(sa.select(t.runs).where(t.runs.c.run_id == run_id))
        return rows[0] if rows else None

    def run_history(
        self, run_id: str, only_root: bool = False
    ) -> tuple[list[Row], list[Row], list[Row], list[Row]]:
        """Steps, executions, results and assignments of one run (or of its root step only)."""
        query = sa.select(t.steps).where(t.steps.c.run_id == run_id)
        if only_root:
            query = query.where(t.steps.c.number == 1)
        steps = self._all(query.order_by(t.steps.c.number))
        step_ids = [s["step_id"] for s in steps]
        if not step_ids:
            return steps, [], [], []
        executions = self._all(
            sa.select(t.executions)
            .where(t.executions.c.step_id.in_(step_ids))
            .order_by(t.executions.c.created_at, t.executions.c.attempt)
        )
        ids = [e["execution_id"] for e in executions]
        results = self._all(sa.select(t.results).where(t.results.c.execution_id.in_(ids)))
        assignments = self._all(
            sa.select(t.assignments).where(t.assignments.c.execution_id.in_(ids)).order_by(t.assignments.c.id)
        )
        return steps, executions, results, assignments

    def step(self, step_id: str) -> Row | None:
        rows = self._all(sa.select(t.steps).where(t.steps.c.step_id == step_id))
        return rows[0] if rows else None

    def child_step(self, parent_execution_id: str, call_index: int) -> Row | None:
        rows = self._all(
            sa.select(t.steps).where(
                (t.steps.c.parent_execution_id == parent_execution_id) & (t.steps.c.call_index == call_index)
            )
        )
        return rows[0] if rows else None

    def executions_of_step(self, step_id: str) -> list[Row]:
        return self._all(
            sa.select(t.executions).where(t.executions.c.step_id == step_id).order_by(t.executions.c.attempt)
        )

    def result(self, execution_id: str) -> Row | None:
        rows = self._all(sa.select(t.results).where(t.results.c.execution_id == execution_id))
        return rows[0] if rows else None

    def logs(self, execution_id: str) -> list[Row]:
        return self._all(
            sa.select(t.logs.c.timestamp, t.logs.c.level, t.logs.c.message)
            .where(t.logs.c.execution_id == execution_id)
            .order_by(t.logs.c.id)
        )


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def dumps(value: Any) -> str:
    """Compact JSON text (one shared encoder: ``json.dumps`` with options builds one per call)."""
    return _ENCODER.encode(value)
