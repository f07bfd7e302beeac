"""Assets in a project's store, on every backend: written as history in a batch, read back by every
query; and a database made before assets existed (revision 0004) gains them, keeping its history."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

import coflux.storage
from coflux.errors import StorageError
from coflux.storage import Batch, dumps, schema_name
from coflux.storage import tables as t
from coflux.storage.projects import open_project
from tests.support.storage import StoreFactory

NOW = time.time()
KEY_A, KEY_B = "a" * 64, "b" * 64
HUGE = 5 * 2**31  # a file larger than a 32-bit column holds
LONGEST = "\U0001f600" * 511 + "/xyz"  # 2,048 bytes in UTF-8: the longest path, in PostgreSQL's index too


def _history(run_id: str = "R1") -> Batch:
    """A run whose root step has two executions (R1:1:1 and R1:1:2)."""
    return Batch(
        workspaces=[{"id": 1, "name": "main", "base_id": None, "state": "active", "created_at": NOW}],
        runs=[{"run_id": run_id, "workspace_id": 1, "parent_execution_id": None, "created_at": NOW}],
        steps=[
            {
                "step_id": f"{run_id}:1",
                "run_id": run_id,
                "number": 1,
                "module": "m",
                "target": "flow",
                "type": "workflow",
                "arguments": dumps([]),
                "options": dumps({}),
                "created_at": NOW,
            }
        ],
        executions=[
            {
                "execution_id": f"{run_id}:1:{n}",
                "step_id": f"{run_id}:1",
                "attempt": n,
                "workspace_id": 1,
                "created_at": NOW,
            }
            for n in (1, 2)
        ],
    )


def _asset(asset_id: str, execution_id: str, at: float, name: str | None = None) -> dict[str, Any]:
    return {"asset_id": asset_id, "execution_id": execution_id, "name": name, "created_at": at}


def _entry(asset_id: str, path: str, key: str, size: int, media_type: str = "text/csv") -> dict[str, Any]:
    return {"asset_id": asset_id, "path": path, "blob_key": key, "size": size, "media_type": media_type}


A1, A2, A3 = "A" + "1" * 24, "A" + "2" * 24, "A" + "3" * 24


def test_assets_their_entries_and_restorations_are_read_back(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        store.apply(_history())
        store.apply(
            Batch(
                assets=[
                    _asset(A2, "R1:1:1", NOW + 2),
                    _asset(A1, "R1:1:1", NOW + 1, "report é"),
                    _asset(A3, "R1:1:2", NOW),
                ],
                asset_entries=[
                    _entry(A1, "z/late.csv", KEY_A, 3),
                    _entry(A1, "data/huge.bin", KEY_B, HUGE, "application/octet-stream"),
                    _entry(A2, "same.csv", KEY_A, 3),
                    _entry(A2, LONGEST, KEY_B, 1),
                ],
                asset_restorations=[
                    {"asset_id": A1, "execution_id": "R1:1:2", "restored_at": NOW + 5},
                    {"asset_id": A1, "execution_id": "R9:1:1", "restored_at": NOW + 6},
                ],
            )
        )
    with store_factory() as store:  # read back after a reopen
        assert store.asset(A1) == {
            "asset_id": A1,
            "execution_id": "R1:1:1",
            "name": "report é",
            "created_at": NOW + 1,
        }
        assert store.asset("A" + "9" * 24) is None
        assert store.asset_entries(A1) == [
            {
                "path": "data/huge.bin",
                "blob_key": KEY_B,
                "size": HUGE,
                "media_type": "application/octet-stream",
            },
            {"path": "z/late.csv", "blob_key": KEY_A, "size": 3, "media_type": "text/csv"},
        ]
        assert store.asset_entry(A1, "z/late.csv") == {
            "path": "z/late.csv",
            "blob_key": KEY_A,
            "size": 3,
            "media_type": "text/csv",
        }
        assert store.asset_entry(A1, "nope") is None
        assert store.asset_entry(A2, LONGEST) == {
            "path": LONGEST,
            "blob_key": KEY_B,
            "size": 1,
            "media_type": "text/csv",
        }
        assert [
            (r["asset_id"], r["execution_id"], r["entries"]) for r in store.assets_of(["R1:1:1", "R1:1:2"])
        ] == [
            (A3, "R1:1:2", 0),
            (A1, "R1:1:1", 2),
            (A2, "R1:1:1", 2),
        ]
        assert store.assets_of(["R1:1:2"])[0]["name"] is None
        assert store.assets_of([]) == [] and store.assets_of(["R7:1:1"]) == []
        assert store.restorations(A1) == [
            {"execution_id": "R1:1:2", "restored_at": NOW + 5},
            {"execution_id": "R9:1:1", "restored_at": NOW + 6},
        ]
        assert store.restorations(A2) == []


def test_an_asset_of_no_execution_or_a_path_twice_is_refused_whole(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        store.apply(_history())
        twice = Batch(
            assets=[_asset(A1, "R1:1:1", NOW)],
            asset_entries=[_entry(A1, "x", KEY_A, 1), _entry(A1, "x", KEY_B, 1)],
        )
        orphan = Batch(assets=[_asset(A2, "R5:1:1", NOW)])
        for batch in (twice, orphan):
            with pytest.raises(StorageError):
                store.apply(batch)
        assert store.asset(A1) is None and store.asset(A2) is None and store.asset_entries(A1) == []


class _At0004:
    """A project database as revision 0004 left it: before assets."""

    def __init__(self, engine: Engine, schema: str | None) -> None:
        self.engine = engine
        options = {"schema_translate_map": {None: schema}} if schema else {}
        with engine.connect() as conn:
            config = Config()
            config.set_main_option(
                "script_location", str(Path(coflux.storage.__file__).parent / "migrations")
            )
            config.attributes["connection"] = conn.execution_options(**options)
            config.attributes["schema"] = schema
            command.upgrade(config, "0004")
            conn.commit()

    def close(self) -> None:
        self.engine.dispose()


def test_a_database_from_before_assets_gains_them_and_keeps_its_history(store_factory: StoreFactory) -> None:
    store_factory.projects.add(store_factory.project)
    open_project(store_factory.project, store_factory.data_dir, store_factory.database_url, _At0004).close()
    with store_factory.connect() as conn:
        schema = schema_name(store_factory.project) if store_factory.database_url else None
        assert "assets" not in sa.inspect(conn).get_table_names(schema=schema)
        history = _history()
        for table, rows in (
            (t.workspaces, history.workspaces),
            (t.runs, history.runs),
            (t.steps, history.steps),
        ):
            conn.execute(
                table.insert(), [{c.name: None for c in table.columns if c.nullable} | r for r in rows]
            )
        defaults = {c.name: None for c in t.executions.columns if c.nullable}
        conn.execute(t.executions.insert(), [defaults | r for r in history.executions])
        conn.commit()
    with store_factory() as store:
        assert store.run("R1") is not None
        assert [r["execution_id"] for r in store.executions_of_step("R1:1")] == ["R1:1:1", "R1:1:2"]
        store.apply(Batch(assets=[_asset(A1, "R1:1:1", NOW)], asset_entries=[_entry(A1, "x.csv", KEY_A, 3)]))
        assert [(r["asset_id"], r["entries"]) for r in store.assets_of(["R1:1:1"])] == [(A1, 1)]
