"""Assets over REST inside a real Jupyter server (pytest-jupyter): blobs uploaded and assets persisted
with a worker token, for executions of runs a scripted worker holds (a real orchestrator and store);
listings and files read back byte for byte; what is malformed, unknown or not allowed refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPResponse

from coflux.orchestrator import Hub
from coflux.tokens import Scope
from tests.support.service import FakeWorker

pytest_plugins = ("pytest_jupyter.jupyter_server",)

CSV = "city,temp\nLisbon,21\nSão Paulo,27\n".encode()
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


class Project:
    """Project default of the test's server: its tokens, and executions of runs a scripted worker
    holds, to persist assets for."""

    def __init__(self, jp_fetch: Any, hub: Hub) -> None:
        self.fetch = jp_fetch
        self.hub = hub
        self.worker: FakeWorker | None = None
        self.token = hub.token("default", Scope.WORKER)

    async def execution(self) -> str:
        """The execution of a new run of ``m:flow`` (its worker says hello on first use)."""
        if self.worker is None:
            self.worker = FakeWorker(await self.hub.project("default", create=True))
            self.worker.hello()
        await self.worker.service.start_run("main", "m", "flow", [1])
        execute = await self.worker.next("execute")
        execution_id: str = execute["execution_id"]
        return execution_id

    async def call(
        self, method: str, *path: str, body: Any = None, token: str | None = None, **kwargs: Any
    ) -> HTTPResponse:
        """The response, whatever its status (``raw``: the body as bytes, else JSON)."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body)
        headers = {"Authorization": f"token {token or self.token}"}
        try:
            response: HTTPResponse = await self.fetch(
                "coflux",
                "api",
                "projects",
                "default",
                *path,
                method=method,
                body=data,
                headers=headers,
                **kwargs,
            )
        except HTTPClientError as err:
            assert err.response is not None
            return err.response
        return response

    async def upload(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        response = await self.call("PUT", "blobs", key, body=data)
        assert response.code == 201, response.body
        return key

    async def persist(self, execution_id: str, files: dict[str, bytes], name: str | None = None) -> Any:
        entries = [
            {"path": path, "blob_key": await self.upload(data), "size": len(data), "media_type": _type(path)}
            for path, data in files.items()
        ]
        response = await self.call(
            "POST", "assets", body={"execution_id": execution_id, "name": name, "entries": entries}
        )
        assert response.code == 201, response.body
        return json.loads(response.body)


def _type(path: str) -> str:
    return {"csv": "text/csv", "png": "image/png", "html": "text/html"}.get(
        path.rsplit(".", 1)[-1], "application/octet-stream"
    )


def _error(response: HTTPResponse) -> tuple[int, str, str]:
    error = json.loads(response.body)["error"]
    return response.code, error["code"], error["message"]


@pytest.fixture
def project(jp_fetch: Any, jp_serverapp: Any) -> Project:
    return Project(jp_fetch, jp_serverapp.web_app.settings["coflux_hub"])


def _blob_files(jp_serverapp: Any) -> list[Path]:
    """Every file under the blob store of project default (a local folder)."""
    root = Path(jp_serverapp.web_app.settings["coflux_hub"].blobs("default").url)
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_a_persisted_asset_is_listed_and_its_files_download_byte_for_byte(project: Project) -> None:
    execution_id = await project.execution()
    persisted = await project.persist(
        execution_id, {"data/cities.csv": CSV, "plot é.png": PNG}, name="report"
    )
    asset_id = persisted["asset_id"]
    assert len(asset_id) == 25 and asset_id.startswith("A")
    assert persisted["execution_id"] == execution_id and persisted["name"] == "report"

    listing = json.loads((await project.call("GET", "assets", asset_id)).body)
    assert listing["asset_id"] == asset_id and listing["name"] == "report"
    assert listing["execution_id"] == execution_id and listing["restored_by"] == []
    assert listing["entries"] == [
        {
            "path": "data/cities.csv",
            "blob_key": hashlib.sha256(CSV).hexdigest(),
            "size": len(CSV),
            "media_type": "text/csv",
        },
        {
            "path": "plot é.png",
            "blob_key": hashlib.sha256(PNG).hexdigest(),
            "size": len(PNG),
            "media_type": "image/png",
        },
    ]

    csv = await project.call("GET", "assets", asset_id, "files", "data", "cities.csv")
    assert csv.body == CSV
    assert csv.headers["Content-Type"] == "text/csv"
    assert csv.headers["Content-Length"] == str(len(CSV))
    assert csv.headers["Content-Disposition"] == "attachment; filename*=UTF-8''cities.csv"
    png = await project.call("GET", "assets", asset_id, "files", "plot é.png", params={"inline": "1"})
    assert png.body == PNG and png.headers["Content-Type"] == "image/png"
    assert "Content-Disposition" not in png.headers

    page = b"<script>fetch('/api/contents')</script>"
    html = await project.persist(execution_id, {"page.html": page})
    shown = await project.call(
        "GET", "assets", html["asset_id"], "files", "page.html", params={"inline": "1"}
    )
    assert shown.body == page  # served, but a browser runs none of it
    assert "default-src 'none'" in shown.headers["Content-Security-Policy"]
    assert "sandbox" in shown.headers["Content-Security-Policy"]
    assert shown.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_submit_token_reads_assets_but_cannot_persist_and_another_projects_token_gets_nothing(
    project: Project,
) -> None:
    execution_id = await project.execution()
    asset_id = (await project.persist(execution_id, {"x.csv": CSV}))["asset_id"]
    submit = project.hub.token("default", Scope.SUBMIT)
    assert (await project.call("GET", "assets", asset_id, token=submit)).code == 200
    assert (await project.call("GET", "assets", asset_id, "files", "x.csv", token=submit)).body == CSV

    entry = {
        "path": "y.csv",
        "blob_key": hashlib.sha256(CSV).hexdigest(),
        "size": len(CSV),
        "media_type": "text/csv",
    }
    body = {"execution_id": execution_id, "name": None, "entries": [entry]}
    refused = _error(await project.call("POST", "assets", body=body, token=submit))
    assert refused == (
        403,
        "forbidden",
        "a submit token can't persist assets or record their restorations: use a worker token",
    )
    restoration = {"execution_id": execution_id}
    assert (
        await project.call("POST", "assets", asset_id, "restorations", body=restoration, token=submit)
    ).code == 403

    other = project.hub.token("other", Scope.WORKER)
    for path in (("assets", asset_id), ("assets", asset_id, "files", "x.csv")):
        code, kind, message = _error(await project.call("GET", *path, token=other))
        assert (code, kind) == (401, "unauthorized") and "not valid for project 'default'" in message
    assert (await project.call("POST", "assets", body=body, token=other)).code == 401


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("../x", "a '..' segment"),
        ("data/../../x", "a '..' segment"),
        ("/etc/x", "must be relative"),
        ("a//b", "an empty segment"),
        ("a/./b", "a '.' segment"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("", "1 to 1024"),
        ("x" * 1025, "1 to 1024"),
        ("\U0001f600" * 600, "at most 2048 bytes"),
        ("a\ud800b", "valid Unicode"),
    ],
)
async def test_a_path_that_could_leave_its_asset_is_refused_and_nothing_is_recorded(
    project: Project, path: str, says: str
) -> None:
    execution_id = await project.execution()
    key = await project.upload(CSV)
    entries = [{"path": path, "blob_key": key, "size": len(CSV), "media_type": "text/csv"}]
    response = await project.call(
        "POST", "assets", body={"execution_id": execution_id, "name": None, "entries": entries}
    )
    code, kind, message = _error(response)
    assert (code, kind) == (400, "bad_request") and says in message
    assert await _assets_of(project, execution_id) == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"blob_key": "abc"}, "blob_key must be 64 lowercase hex digits"),
        ({"blob_key": "A" * 64}, "blob_key must be 64 lowercase hex digits"),
        ({"blob_key": "0" * 64}, f"blob {'0' * 64} is not in the store: upload it first"),
        ({"size": len(CSV) + 1}, f"says {len(CSV) + 1} bytes"),
        ({"size": -1}, "size must be an integer"),
        ({"media_type": "text/csv\r\nX-Evil: 1"}, "media_type"),
    ],
)
async def test_an_entry_with_a_bad_or_missing_blob_is_refused(
    project: Project, change: dict[str, Any], says: str
) -> None:
    execution_id = await project.execution()
    entry = {
        "path": "x.csv",
        "blob_key": await project.upload(CSV),
        "size": len(CSV),
        "media_type": "text/csv",
    }
    body = {"execution_id": execution_id, "name": None, "entries": [{**entry, **change}]}
    code, kind, message = _error(await project.call("POST", "assets", body=body))
    assert (code, kind) == (400, "bad_request") and says in message, message
    assert await _assets_of(project, execution_id) == []


async def test_malformed_requests_and_unknown_things_are_told_apart(project: Project) -> None:
    execution_id = await project.execution()
    key = await project.upload(CSV)
    entry = {"path": "x.csv", "blob_key": key, "size": len(CSV), "media_type": "text/csv"}
    unknown = {"execution_id": execution_id.replace(":1:", ":9:"), "name": None, "entries": [entry]}
    assert _error(await project.call("POST", "assets", body=unknown))[:2] == (404, "not_found")
    twice = {"execution_id": execution_id, "name": None, "entries": [entry, entry]}
    assert "appears twice" in _error(await project.call("POST", "assets", body=twice))[2]
    for bad in ({"execution_id": "nope", "entries": []}, {"execution_id": execution_id, "entries": "x"}):
        assert _error(await project.call("POST", "assets", body=bad))[:2] == (400, "bad_request")

    asset_id = (await project.persist(execution_id, {"x.csv": CSV}))["asset_id"]
    code, kind, message = _error(await project.call("GET", "assets", "not-an-asset"))
    assert (code, kind) == (400, "bad_request") and "not an asset id" in message
    assert _error(await project.call("GET", "assets", "A" + "0" * 24))[:2] == (404, "not_found")
    assert _error(await project.call("GET", "assets", asset_id, "files", "y.csv"))[:2] == (404, "not_found")
    assert _error(await project.call("GET", "assets", asset_id, "files", "a//b"))[:2] == (400, "bad_request")
    assert _error(await project.call("GET", "assets", asset_id, "files", "..", "x.csv"))[:2] == (
        400,
        "bad_request",
    )


async def test_identical_files_of_two_executions_are_stored_once(project: Project, jp_serverapp: Any) -> None:
    first, second = await project.execution(), await project.execution()
    a = await project.persist(first, {"x.csv": CSV})
    b = await project.persist(second, {"copy/of/x.csv": CSV})
    assert a["asset_id"] != b["asset_id"]
    assert a["entries"][0]["blob_key"] == b["entries"][0]["blob_key"]
    assert [p.name for p in _blob_files(jp_serverapp)] == [hashlib.sha256(CSV).hexdigest()]


async def test_restorations_are_recorded_and_listed(project: Project) -> None:
    persisted_by, restored_by = await project.execution(), await project.execution()
    asset_id = (await project.persist(persisted_by, {"x.csv": CSV}))["asset_id"]
    response = await project.call(
        "POST", "assets", asset_id, "restorations", body={"execution_id": restored_by}
    )
    assert response.code == 201 and json.loads(response.body) == {}
    listing = json.loads((await project.call("GET", "assets", asset_id)).body)
    assert [r["execution_id"] for r in listing["restored_by"]] == [restored_by]
    assert listing["restored_by"][0]["restored_at"] >= listing["created_at"]
    unknown = await project.call(
        "POST", "assets", "A" + "1" * 24, "restorations", body={"execution_id": restored_by}
    )
    assert _error(unknown)[:2] == (404, "not_found")


async def test_the_run_view_lists_each_executions_assets_in_creation_order(project: Project) -> None:
    execution_id = await project.execution()
    first = await project.persist(execution_id, {"a.csv": CSV, "b.png": PNG}, name="both")
    second = await project.persist(execution_id, {"c.csv": CSV})
    assert await _assets_of(project, execution_id) == [
        {"asset_id": first["asset_id"], "name": "both", "entries": 2},
        {"asset_id": second["asset_id"], "name": None, "entries": 1},
    ]


async def _assets_of(project: Project, execution_id: str) -> list[dict[str, Any]]:
    run = json.loads((await project.call("GET", "runs", execution_id.split(":")[0])).body)
    executions = {e["execution_id"]: e for step in run["steps"] for e in step["executions"]}
    assets: list[dict[str, Any]] = executions[execution_id]["assets"]
    return assets


async def test_blobs_are_checked_against_their_key_and_a_refused_one_leaves_nothing(
    project: Project, jp_serverapp: Any
) -> None:
    data = b"the real bytes"
    key = hashlib.sha256(data).hexdigest()
    assert (await project.call("HEAD", "blobs", key)).code == 404
    code, kind, message = _error(await project.call("PUT", "blobs", key, body=b"other bytes"))
    assert (code, kind) == (400, "bad_request") and "nothing was stored" in message
    assert (await project.call("HEAD", "blobs", key)).code == 404
    assert _blob_files(jp_serverapp) == []  # no blob, no temporary file
    for bad in ("abc", key.upper(), key + "0"):
        code, kind, message = _error(await project.call("PUT", "blobs", bad, body=data))
        assert (code, kind) == (400, "bad_request") and "64 lowercase hex digits" in message
    assert _blob_files(jp_serverapp) == []

    await project.upload(data)
    head = await project.call("HEAD", "blobs", key)
    assert head.code == 200 and head.headers["Content-Length"] == str(len(data))
    assert (await project.call("GET", "blobs", key)).body == data
