"""Assets end to end with real processes: a `coflux server`, a writer and a reader `coflux worker`,
the REST API, `coflux assets` and `cf.Client` in this process."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import coflux as cf
from tests.support.harness import Server, Worker, environment, start_run, wait_for_run, wait_until

pytestmark = pytest.mark.e2e

MODULE = "e2e_asset_flows"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the workers' blob caches
    server = Server(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture
def workers(server: Server) -> Iterator[list[Worker]]:
    started = [
        Worker(server, MODULE, "--provides", "role=writer").start(),
        Worker(server, MODULE, "--provides", "role=reader").start(),
    ]
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def client(server: Server) -> cf.Client:
    return cf.Client(server.url, token=server.token, project="default", workspace="main")


def succeeded(server: Server, workflow: str, *arguments: Any) -> dict[str, Any]:
    run_id = start_run(server, workflow, *arguments)
    data = wait_for_run(server, run_id, timeout=90)
    assert data["status"] == "succeeded", data["error"]
    return data


def expected_csv(rows: int) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["i", "value"])
    writer.writerows([i, i * 1.5] for i in range(rows))
    return out.getvalue().encode()


def execution_of(data: dict[str, Any], target: str) -> dict[str, Any]:
    [step] = [s for s in data["steps"] if s["target"] == target]
    execution: dict[str, Any] = step["executions"][-1]
    return execution


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = environment(COFLUX_URL=server.url, COFLUX_TOKEN=server.token)
    return subprocess.run(
        [sys.executable, "-m", "coflux.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_files_persisted_on_one_worker_are_restored_on_another_and_download_byte_for_byte(
    server: Server, workers: list[Worker], client: cf.Client, tmp_path: Path
) -> None:
    data = succeeded(server, f"{MODULE}:pipeline", 50)
    value = client.get_run(data["run_id"]).result(timeout=30)
    asset, result = value["asset"], value["result"]
    assert result == {
        "total": sum(i * 1.5 for i in range(50)),
        "files": ["data.csv", "plots"],  # restored into the reader's own, otherwise empty, directory
        "png": (64, 32),
        "cwd_is_own": True,
    }
    assert isinstance(asset, cf.Asset) and asset.name == "table and plot"
    assert {p: (e.size, e.metadata["media_type"]) for p, e in asset.entries.items()} == {
        "data.csv": (len(expected_csv(50)), "text/csv"),
        "plots/figure.png": (asset["plots/figure.png"].size, "image/png"),
    }
    made = execution_of(data, "make_files")
    assert made["assets"] == [{"asset_id": asset.id, "name": "table and plot", "entries": 2}]

    # restored in this process, through the REST API's files, and with `coflux assets download`
    restored = asset.restore(at=tmp_path / "client")
    assert restored["data.csv"].read_bytes() == expected_csv(50)
    downloaded = cli(server, "assets", "download", asset.id, "--to", str(tmp_path / "cli"))
    assert downloaded.returncode == 0, downloaded.stderr
    for path, entry in asset.entries.items():
        body = server.request("GET", f"api/projects/default/assets/{asset.id}/files/{path}").body
        assert hashlib.sha256(body).hexdigest() == entry.blob_key  # the bytes the writer hashed
        assert restored[path].read_bytes() == body == (tmp_path / "cli" / path).read_bytes()
    assert str(tmp_path / "cli" / "plots" / "figure.png") in downloaded.stdout
    mode = 0o666 & ~_umask()  # as any new file of this process: readable by others under umask 022
    assert {
        (restored[p].stat().st_mode & 0o777, (tmp_path / "cli" / p).stat().st_mode & 0o777) for p in restored
    } == {(mode, mode)}
    # `coflux runs show` reads the asset as its file list, in the writer's step and in the result
    shown = cli(server, "runs", "show", data["run_id"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("<asset table and plot: 2 files: data.csv, plots/figure.png>") >= 2, (
        shown.stdout
    )
    # the workflow passed the asset on in its result: the run view names it as the writer did
    assert data["result"]["asset"] == {
        "type": "asset",
        "asset_id": asset.id,
        "name": "table and plot",
        "entries": 2,
        "preview": {"text": "<asset table and plot: 2 files: data.csv, plots/figure.png>"},
    }

    # who persisted it and who restored it
    reader = execution_of(data, "total")["execution_id"]
    listing = server.request("GET", f"api/projects/default/assets/{asset.id}").json()
    assert listing["execution_id"] == made["execution_id"]
    assert [r["execution_id"] for r in listing["restored_by"]] == [reader]
    shown = cli(server, "assets", "show", asset.id)
    assert shown.returncode == 0, shown.stderr
    assert "data.csv" in shown.stdout and "text/csv" in shown.stdout and "image/png" in shown.stdout
    assert f"persisted by {made['execution_id']}" in shown.stdout and f"restored by {reader}" in shown.stdout


def test_download_can_pick_files_and_refuses_nothing_matching(
    server: Server, workers: list[Worker], client: cf.Client, tmp_path: Path
) -> None:
    data = succeeded(server, f"{MODULE}:pipeline", 3)
    asset_id = execution_of(data, "make_files")["assets"][0]["asset_id"]
    picked = cli(server, "assets", "download", asset_id, "--to", str(tmp_path / "out"), "--match", "*.png")
    assert picked.returncode == 0, picked.stderr
    assert [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*")] == [
        "plots/figure.png"
    ]
    none = cli(server, "assets", "download", asset_id, "--match", "*.parquet")
    assert none.returncode == 1 and "no file matching '*.parquet'" in none.stderr
    assert client.asset(asset_id).entries.keys() == {"data.csv", "plots/figure.png"}
    with pytest.raises(cf.CofluxError, match="not an asset id"):
        client.asset("../etc")


def test_paths_leaving_the_working_directory_are_refused(server: Server, workers: list[Worker]) -> None:
    data = succeeded(server, f"{MODULE}:escapes")
    dotdot, absolute, symlink = data["result"]
    assert dotdot.startswith("AssetError: cf.asset(): '../outside.txt' is outside the folder")
    assert absolute.startswith("AssetError: cf.asset(): '/") and "is outside the folder" in absolute
    assert symlink.startswith("AssetError: cf.asset(): 'link.txt' is a symlink to") and "outside" in symlink


def test_identical_files_from_different_executions_are_stored_once(
    server: Server, workers: list[Worker], client: cf.Client
) -> None:
    data = succeeded(server, f"{MODULE}:twice")
    first, second = client.get_run(data["run_id"]).result(timeout=30)
    assert first.id != second.id
    key = first["same.txt"].blob_key
    assert second["same.txt"].blob_key == key
    assert len(list((server.data_dir / "blobs").rglob(key))) == 1


def test_a_dict_composes_another_assets_entry_without_uploading_it_again(
    server: Server, workers: list[Worker], client: cf.Client, tmp_path: Path
) -> None:
    data = succeeded(server, f"{MODULE}:composed", 5)
    composed = client.get_run(data["run_id"]).result(timeout=30)
    original = client.asset(execution_of(data, "make_files")["assets"][0]["asset_id"])
    assert sorted(composed.entries) == ["notes.md", "renamed.csv"]
    assert composed["renamed.csv"].blob_key == original["data.csv"].blob_key
    assert composed["notes.md"].media_type == "text/markdown"
    assert composed["renamed.csv"].restore(at=tmp_path).read_bytes() == expected_csv(5)


def test_a_module_written_for_coflux_runs_unchanged(server: Server) -> None:
    worker = Worker(server, "coflux_sdk_assets").start()
    try:
        data = succeeded(server, "coflux_sdk_assets:rows")
    finally:
        worker.stop()
    assert data["result"] == 3
    written = execution_of(data, "write")
    assert [a["entries"] for a in written["assets"]] == [1]


def test_an_execution_returned_to_the_client_resolves_there_to_a_restorable_asset(
    server: Server, workers: list[Worker], client: cf.Client, tmp_path: Path
) -> None:
    data = succeeded(server, f"{MODULE}:handle")
    execution = client.get_run(data["run_id"]).result(timeout=30)
    assert execution.id == execution_of(data, "same_file")["execution_id"]
    asset = execution.result(timeout=30)
    assert isinstance(asset, cf.Asset) and asset.name == "handled"
    restored = asset.restore(at=tmp_path, match="*.txt")
    assert restored["handled.txt"].read_text() == "handled"
    assert restored["same.txt"].read_text() == "identical content in every execution\n"


def test_an_execution_handle_in_a_client_raises_its_error_and_gives_any_value_whole(
    server: Server, workers: list[Worker], client: cf.Client
) -> None:
    data = succeeded(server, f"{MODULE}:handles")
    failing, pickled = client.get_run(data["run_id"]).result(timeout=30)
    with pytest.raises(ValueError, match="no files today") as raised:
        failing.result(timeout=30)
    assert isinstance(raised.value, cf.ExecutionError)
    assert pickled.result(timeout=30) == complex(1, 2)  # pickled by the worker, unpickled here


def test_an_execution_result_over_rest_is_its_tagged_value_and_bad_ids_are_refused(
    server: Server, workers: list[Worker], client: cf.Client
) -> None:
    data = succeeded(server, f"{MODULE}:handles")
    failing, pickled = (
        e["execution_id"] for e in (execution_of(data, "broken"), execution_of(data, "opaque"))
    )
    for execution_id in (failing, pickled):  # the workflow returned their handles: they may still run
        final = lambda e=execution_id: client.execution_result(e)["state"] in ("succeeded", "failed")  # noqa: E731
        wait_until(final, 60, f"{execution_id} to finish")
    value = client.execution_result(pickled)
    assert value["state"] == "succeeded" and value["value"]["$c"] == "pickle"
    assert client.decode(value["value"]) == complex(1, 2)
    failed = client.execution_result(failing)
    assert failed["state"] == "failed" and "no files today" in failed["error"]["message"]
    with pytest.raises(cf.BadRequest, match="not an execution id"):
        client.execution_result("../../etc")
    with pytest.raises(cf.NotFound, match="no execution"):
        client.execution_result(f"{data['run_id']}:99:1")
    other = cf.Client(server.url, token=client.create_token("submit")["token"], project="other")
    with pytest.raises((cf.Unauthorized, cf.Forbidden, cf.NotFound)):
        other.execution_result(pickled)


def test_an_asset_persisted_while_the_server_restarts_waits_for_it_and_is_kept(
    server: Server, workers: list[Worker], client: cf.Client, tmp_path: Path
) -> None:
    go, started = tmp_path / "go", tmp_path / "started"
    run_id = start_run(server, f"{MODULE}:late_asset", str(go), str(started))
    wait_until(started.exists, 60, "the task to start")
    server.kill()
    go.touch()  # the task uploads and posts its listing now, to a server that is down
    time.sleep(1.0)
    server.start()
    data = wait_for_run(server, run_id, timeout=90)
    assert data["status"] == "succeeded", data["error"]
    asset = client.get_run(run_id).result(timeout=30)
    assert asset.name == "late"
    restored = asset.restore(at=tmp_path / "out")
    assert restored["late.txt"].read_text() == "persisted while the server restarted\n"
    assert [a["asset_id"] for a in execution_of(data, "persist_when")["assets"]] == [asset.id]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
