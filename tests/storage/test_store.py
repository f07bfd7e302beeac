"""SqlStore on every backend: migrations, atomic batches, every query, durability and isolation."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

import coflux.storage
from coflux.errors import StorageError
from coflux.storage import Batch, SqlStore, dumps, list_projects, schema_name
from tests.support.storage import StoreFactory, drop_schemas

NOW = time.time()  # a float with every digit used: it must come back exactly
TABLES = {"workspaces", "targets", "runs", "steps", "executions", "assignments", "results", "logs"}


def _head() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(Path(coflux.storage.__file__).parent / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


def _workspace(id_: int, name: str, base_id: int | None = None) -> dict[str, Any]:
    return {"id": id_, "name": name, "base_id": base_id, "state": "active", "created_at": NOW}


def _target(version: int) -> dict[str, Any]:
    definition = {"module": "m", "name": "flow", "type": "workflow", "version": version}
    return {
        "workspace_id": 1,
        "module": "m",
        "name": "flow",
        "type": "workflow",
        "definition": dumps(definition),
        "registered_at": NOW + version,
    }


def _run(run_id: str, parent: str | None = None) -> dict[str, Any]:
    return {"run_id": run_id, "workspace_id": 1, "parent_execution_id": parent, "created_at": NOW}


def _step(
    run_id: str, number: int, parent: str | None = None, call_index: int | None = None
) -> dict[str, Any]:
    return {
        "step_id": f"{run_id}:{number}",
        "run_id": run_id,
        "number": number,
        "parent_execution_id": parent,
        "call_index": call_index,
        "module": "m",
        "target": "flow" if parent is None else "child",
        "type": "workflow" if parent is None else "task",
        "arguments": dumps([number, {"$c": "tuple", "items": ["é", None]}]),
        "options": dumps({"retries": {"limit": 1}}),
        "created_at": NOW + number,
        "cache_key": f"{number:064x}" if parent is not None else None,
        "memo_key": None,
    }


def _execution(step_id: str, attempt: int) -> dict[str, Any]:
    return {
        "execution_id": f"{step_id}:{attempt}",
        "step_id": step_id,
        "attempt": attempt,
        "workspace_id": 1,
        "execute_after": NOW + 60 if attempt > 1 else None,
        "created_at": NOW + attempt,
        "retry": attempt - 1,
        "rerun_parents": True if attempt > 1 else None,  # a re-run's chain reads back
        "fixed_step": f"{step_id}:9" if attempt > 1 else None,
    }


def _assignment(execution_id: str, session_id: str, at: float) -> dict[str, Any]:
    return {"execution_id": execution_id, "session_id": session_id, "assigned_at": at}


def _log(execution_id: str, offset: float, message: str) -> dict[str, Any]:
    return {"execution_id": execution_id, "timestamp": NOW + offset, "level": "info", "message": message}


def _history() -> Batch:
    """Run R1: a workflow (step 1, still running) whose children are step 2 (failed once, then
    succeeded), step 3 (running, reassigned from S1 to S2) and step 4 (queued, never assigned)."""
    return Batch(
        workspaces=[_workspace(1, "main"), _workspace(2, "main/dev", base_id=1)],
        targets=[_target(1)],
        runs=[_run("R1")],
        steps=[
            _step("R1", 1),
            _step("R1", 2, "R1:1:1", 0),
            _step("R1", 3, "R1:1:1", 1),
            _step("R1", 4, "R1:1:1", 2),
        ],
        executions=[
            _execution("R1:1", 1),
            _execution("R1:2", 1),
            _execution("R1:2", 2),
            _execution("R1:3", 1),
            _execution("R1:4", 1),
        ],
        assignments=[
            _assignment("R1:1:1", "S1", NOW + 1),
            _assignment("R1:2:1", "S1", NOW + 2),
            _assignment("R1:3:1", "S1", NOW + 3),
            _assignment("R1:2:2", "S2", NOW + 4),
            _assignment("R1:3:1", "S2", NOW + 5),
        ],
        results=[
            {
                "execution_id": "R1:2:1",
                "state": "failed",
                "value": None,
                "error": dumps({"type": "builtins.ValueError", "message": "no"}),
                "created_at": NOW + 3,
                "cached_from": None,
            },
            {
                "execution_id": "R1:2:2",
                "state": "succeeded",
                "value": dumps(49),
                "error": None,
                "created_at": NOW + 5,
                "cached_from": None,
            },
        ],
        logs=[_log("R1:1:1", 1, "first"), _log("R1:2:2", 2, "child"), _log("R1:1:1", 3, "second ✓")],
    )


def _ids(rows: list[dict[str, Any]], key: str) -> list[Any]:
    return [row[key] for row in rows]


def test_migrations_create_the_schema_and_reopening_is_idempotent(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        store.apply(Batch(workspaces=[_workspace(1, "main")]))
    with store_factory() as store:  # the migration is not run twice, and nothing is lost
        assert _ids(store.workspaces(), "name") == ["main"]
    with store_factory.connect() as conn:
        schema = schema_name(store_factory.project) if store_factory.database_url else None
        assert set(sa.inspect(conn).get_table_names(schema=schema)) >= TABLES
        version = sa.Table("alembic_version", sa.MetaData(), sa.Column("version_num", sa.String))
        versions = conn.execute(sa.select(version.c.version_num)).scalars().all()  # in the project's schema
        assert versions == [_head()]


def test_a_batch_is_read_back_by_every_query(store_factory: StoreFactory) -> None:
    history = _history()
    with store_factory() as store:
        store.apply(history)

        assert store.workspaces() == history.workspaces
        assert store.targets() == history.targets

        steps, executions, assigned = store.unfinished()
        assert sorted(_ids(steps, "step_id")) == ["R1:1", "R1:3", "R1:4"]
        assert sorted(_ids(executions, "execution_id")) == ["R1:1:1", "R1:3:1", "R1:4:1"]
        # the latest assignment wins, with when it was made
        latest = {row["execution_id"]: (row["session_id"], row["assigned_at"]) for row in history.assignments}
        assert {k: v[0] for k, v in assigned.items()} == {"R1:1:1": "S1", "R1:3:1": "S2"}
        assert assigned == {k: latest[k] for k in assigned}

        assert store.runs_of(["R1", "Rnone"]) == history.runs
        assert store.runs_of([]) == []
        assert store.step_counts(["R1", "Rnone"]) == {"R1": 4}
        assert store.step_counts([]) == {}
        assert store.run("R1") == history.runs[0]
        assert store.run("Rnone") is None

        steps, executions, results, assignments = store.run_history("R1")
        assert steps == history.steps
        assert sorted(_ids(executions, "execution_id")) == ["R1:1:1", "R1:2:1", "R1:2:2", "R1:3:1", "R1:4:1"]
        assert {r["execution_id"]: r for r in results} == {r["execution_id"]: r for r in history.results}
        assert [{k: a[k] for k in ("execution_id", "session_id")} for a in assignments] == [
            {k: a[k] for k in ("execution_id", "session_id")} for a in history.assignments
        ]
        assert store.run_history("Rnone") == ([], [], [], [])

        assert store.step("R1:2") == history.steps[1]
        assert store.step("R1:9") is None
        assert store.child_step("R1:1:1", 1) == history.steps[2]
        assert store.child_step("R1:1:1", 5) is None
        assert store.executions_of_step("R1:2") == history.executions[1:3]
        assert store.executions_of_step("R1:9") == []
        assert store.result("R1:2:2") == history.results[1]
        assert store.result("R1:1:1") is None
        assert store.logs("R1:1:1") == [
            {"timestamp": NOW + 1, "level": "info", "message": "first"},
            {"timestamp": NOW + 3, "level": "info", "message": "second ✓"},
        ]
        assert store.logs("R1:9:1") == []


def test_workspace_updates_change_rows_in_place(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        store.apply(Batch(workspaces=[_workspace(1, "main"), _workspace(2, "dev", 1)]))
        store.apply(Batch(workspace_updates=[{"id": 2, "state": "archived"}]))
        assert [(w["name"], w["state"]) for w in store.workspaces()] == [
            ("main", "active"),
            ("dev", "archived"),
        ]


def test_registering_a_target_again_replaces_it(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        store.apply(Batch(workspaces=[_workspace(1, "main")], targets=[_target(1)]))
        store.apply(Batch(targets=[_target(2)]))
        assert store.targets() == [_target(2)]


def test_registering_a_target_twice_in_one_batch_keeps_the_last(store_factory: StoreFactory) -> None:
    # Two workers of one workspace can register different versions of a workflow in one loop tick.
    with store_factory() as store:
        store.apply(Batch(workspaces=[_workspace(1, "main")]))
        store.apply(Batch(targets=[_target(1), _target(2)]))
        assert store.targets() == [_target(2)]


def _violating(kind: str) -> Batch:
    """A batch of new, valid rows plus one that breaks a constraint against what _history wrote."""
    batch = Batch(
        workspaces=[_workspace(3, "other")],
        targets=[_target(7)],
        runs=[_run("R2")],
        steps=[_step("R2", 1)],
        executions=[_execution("R2:1", 1)],
        assignments=[_assignment("R2:1:1", "S9", NOW)],
        logs=[_log("R1:1:1", 9, "lost")],
    )
    if kind == "duplicate step_id":
        batch.steps.append(_step("R1", 2, "R1:1:1", 7))
    else:  # the same call of the same parent twice
        batch.steps.append(_step("R1", 5, "R1:1:1", 0))
    return batch


@pytest.mark.parametrize("kind", ["duplicate step_id", "duplicate call_index"])
def test_a_failing_batch_raises_storage_error_and_writes_nothing(
    store_factory: StoreFactory, kind: str
) -> None:
    history = _history()
    with store_factory() as store:
        store.apply(history)
        with pytest.raises(StorageError) as caught:
            store.apply(_violating(kind))
        # the driver's own error (SQLite's history inserts bypass SQLAlchemy) or SQLAlchemy's
        assert isinstance(caught.value.__cause__, (sa.exc.IntegrityError, sqlite3.IntegrityError))
        assert not isinstance(caught.value, sa.exc.SQLAlchemyError)

        assert store.workspaces() == history.workspaces
        assert store.targets() == history.targets
        assert store.run("R2") is None and store.step("R2:1") is None
        assert store.step_counts(["R1"]) == {"R1": 4}
        assert store.executions_of_step("R2:1") == []
        assert _ids(store.logs("R1:1:1"), "message") == ["first", "second ✓"]

        store.apply(Batch(runs=[_run("R3")]))  # the store is still usable
        assert store.run("R3") is not None
    with store_factory() as store:
        assert store.run("R2") is None and store.run("R3") is not None


def test_history_survives_close_and_reopen(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        store.apply(_history())
        before = (store.workspaces(), store.targets(), store.unfinished(), store.run_history("R1"))
    with store_factory() as store:
        after = (store.workspaces(), store.targets(), store.unfinished(), store.run_history("R1"))
        assert after == before
        assert _ids(store.logs("R1:1:1"), "message") == ["first", "second ✓"]


def test_projects_are_listed_and_isolated(store_factory: StoreFactory) -> None:
    other = store_factory.project + "_other"
    with store_factory() as first, store_factory(other) as second:
        first.apply(_history())
        second.apply(Batch(workspaces=[_workspace(1, "elsewhere")]))
        assert second.run("R1") is None
        assert second.runs_of(["R1"]) == [] and second.step("R1:1") is None
        assert second.unfinished() == ([], [], {})
        assert _ids(second.workspaces(), "name") == ["elsewhere"]
        assert _ids(first.workspaces(), "name") == ["main", "main/dev"]
    projects = list_projects(store_factory.data_dir, store_factory.database_url)
    assert {store_factory.project, other} <= set(projects)


def test_a_log_line_with_a_nul_character_is_stored(store_factory: StoreFactory) -> None:
    # A task that prints binary data sends a NUL; PostgreSQL text columns refuse it.
    with store_factory() as store:
        store.apply(Batch(logs=[_log("R1:1:1", 0, "before\x00after")]))
        (entry,) = store.logs("R1:1:1")
        assert entry["message"].startswith("before") and entry["message"].endswith("after")


@pytest.mark.parametrize("store_factory", ["sqlite"], indirect=True)
def test_sqlite_file_is_in_wal_mode(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        store.apply(Batch(workspaces=[_workspace(1, "main")]))
        path = store_factory.data_dir / "projects" / f"{store_factory.project}.db"
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            conn.close()
    assert list_projects(store_factory.data_dir) == [store_factory.project]


@pytest.mark.parametrize(
    "store_factory", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgres_lists_only_schemas_with_the_exact_prefix(store_factory: StoreFactory) -> None:
    # "_" is a LIKE wildcard: a schema "cofluxXlegacy" must not show up as a project "legacy".
    url = store_factory.database_url
    assert url is not None
    lookalike = "cofluxX" + store_factory.project
    with store_factory():
        pass
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{lookalike}"'))
        projects = list_projects(store_factory.data_dir, url)
        # The lookalike's suffix is the project's own name: listed once, from its real schema only.
        assert projects.count(store_factory.project) == 1
    finally:
        engine.dispose()
        drop_schemas(url, [lookalike])


def test_an_unreachable_database_raises_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        SqlStore.open("p", tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
