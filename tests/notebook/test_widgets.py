"""RunTree and WorkspaceSwitcher against a real server and worker, built in-process (no kernel:
comms are no-ops; custom messages are delivered as the comm would)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from IPython.core.formatters import DisplayFormatter

from coflux.client import Client
from coflux.notebook import live, register_display, widgetbase
from coflux.notebook.widgets import RUN_MIME_TYPE, RunTree, WorkspaceSwitcher
from tests.support.harness import Server, free_port, start_run, wait_for_run, wait_until
from tests.support.notebook import FakeSession

pytestmark = pytest.mark.e2e

Frontend = Callable[[Any, dict[str, Any]], None]


def _step(view: dict[str, Any], target: str, nth: int = 0) -> dict[str, Any]:
    step: dict[str, Any] = [s for s in view["steps"] if s["target"] == target][nth]
    return step


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_run_tree_follows_a_run_live_until_it_succeeds(server: Server, session: FakeSession) -> None:
    watcher = live.Watcher(poll_interval=600)  # no polling: only the events socket can update it
    try:
        run_id = start_run(server, "widget_flows:ticks", 3, 0.3)
        tree = RunTree(run_id, session=session, watcher=watcher)
        assert tree.run["run_id"] == run_id and tree.run["status"] == "running"
        assert tree.view == "main" and tree.workspace == "main"
        assert {w["name"] for w in tree.workspaces} >= {"main"}

        wait_until(lambda: tree.run["status"] == "succeeded", 30, "the tree to show the run succeeded")
        assert watcher.connected(live.Endpoint.of(session))
        root, *ticks = tree.run["steps"]
        assert [s["target"] for s in ticks] == ["tick", "tick", "tick"]
        root_execution = root["executions"][0]["execution_id"]
        assert all(s["parent_execution_id"] == root_execution for s in ticks)
        assert all(s["executions"][-1]["state"] == "succeeded" for s in ticks)
        assert "result_value" not in tree.run  # raw tagged JSON stays in the kernel
        assert tree.finished
        tree.close()
    finally:
        watcher.close()


def test_rerun_message_creates_a_new_attempt_that_the_tree_shows(
    server: Server, session: FakeSession, watcher: live.Watcher, frontend: Frontend
) -> None:
    run_id = start_run(server, "widget_flows:ticks", 2, 0.01)
    wait_for_run(server, run_id)
    tree = RunTree(run_id, session=session, watcher=watcher)
    step_id = _step(tree.run, "tick")["step_id"]

    frontend(tree, {"action": "rerun", "step_id": step_id})

    assert tree.error == "", tree.error
    assert step_id in tree.notice
    on_server = _step(Client(server.url, server.token).run_data(run_id), "tick")
    assert [e["attempt"] for e in on_server["executions"]] == [1, 2]
    assert [e["attempt"] for e in _step(tree.run, "tick")["executions"]] == [1, 2]  # refreshed at once

    def second_attempt_done() -> bool:
        latest = _step(tree.run, "tick")["executions"][-1]
        return bool(latest["state"] == "succeeded")

    wait_until(second_attempt_done, 30, "the re-run to succeed in the tree")
    latest = _step(tree.run, "tick")["executions"][-1]
    assert latest["rerun"] is True and latest["workspace"] == "main"
    tree.close()


def test_rerun_with_parents_from_the_view_reruns_the_workflow_reusing_the_step(
    server: Server, session: FakeSession, watcher: live.Watcher, frontend: Frontend
) -> None:
    run_id = start_run(server, "widget_flows:ticks", 2, 0.01)
    wait_for_run(server, run_id)
    tree = RunTree(run_id, session=session, watcher=watcher)
    first = _step(tree.run, "tick")["step_id"]

    frontend(tree, {"action": "rerun", "step_id": first, "parents": True})

    assert tree.error == "", tree.error
    assert tree.notice.endswith("once it succeeds, its parents follow")

    def workflow_rerun_done() -> bool:
        root = tree.run["steps"][0]["executions"]
        return len(root) == 2 and root[-1]["state"] == "succeeded"

    wait_until(workflow_rerun_done, 30, "the workflow's re-run to succeed in the tree")
    root = tree.run["steps"][0]["executions"]
    assert root[-1]["rerun_parents"] is True and root[-1]["fixed_step"] == first
    assert [e["state"] for e in _step(tree.run, "tick")["executions"]] == ["succeeded", "succeeded"]
    ticks = [s for s in tree.run["steps"] if s["target"] == "tick"]
    assert len(ticks) == 3, "the re-run workflow reused the re-run tick(0) and called tick(1) anew"
    assert tree.run["status"] == "succeeded" and tree.run["result"] == 1
    tree.close()


def test_a_refused_action_shows_its_error_in_the_widget(
    server: Server, session: FakeSession, watcher: live.Watcher, frontend: Frontend
) -> None:
    elsewhere = _unique("elsewhere")
    session.client().create_workspace(elsewhere, base=None)
    run_id = start_run(server, "widget_flows:ticks", 1, 0.01)
    wait_for_run(server, run_id)
    tree = RunTree(run_id, session=session, watcher=watcher)
    step_id = _step(tree.run, "tick")["step_id"]

    frontend(tree, {"action": "rerun", "step_id": step_id, "workspace": elsewhere})  # raises nothing

    assert "descendant" in tree.error
    assert len(_step(tree.run, "tick")["executions"]) == 1
    assert tree.view == "main"

    frontend(tree, {"action": "explode"})
    assert "unknown action" in tree.error
    frontend(tree, {"action": "cancel"})
    assert "execution_id" in tree.error
    frontend(tree, {"action": "refresh"})
    assert tree.error == ""
    tree.close()


def test_rerun_in_a_child_workspace_moves_the_view_there(
    server: Server, session: FakeSession, watcher: live.Watcher
) -> None:
    child = _unique("child")
    session.client().create_workspace(child, base="main")
    run_id = start_run(server, "widget_flows:ticks", 1, 0.01)
    wait_for_run(server, run_id)
    tree = RunTree(run_id, session=session, watcher=watcher)
    step_id = _step(tree.run, "tick")["step_id"]

    execution_id = tree.rerun(step_id, child)  # no worker serves the child: it stays queued

    assert tree.view == child and tree.run["workspace"] == child
    executions = _step(tree.run, "tick")["executions"]
    assert executions[-1]["execution_id"] == execution_id and executions[-1]["workspace"] == child
    assert executions[-1]["state"] == "queued"
    assert not tree.finished
    tree.cancel(execution_id)
    assert _step(tree.run, "tick")["executions"][-1]["state"] == "cancelled"
    tree.close()


def test_cancel_cascades_to_what_the_execution_waits_on(
    server: Server, session: FakeSession, watcher: live.Watcher, frontend: Frontend
) -> None:
    run_id = start_run(server, "widget_flows:hold", 20)
    tree = RunTree(run_id, session=session, watcher=watcher)

    def sleeper_running() -> bool:
        steps = [s for s in tree.run["steps"] if s["target"] == "sleeper"]
        return bool(steps) and steps[0]["executions"][-1]["state"] == "running"

    wait_until(sleeper_running, 30, "the child to run (seen live)")
    root_execution = tree.run["steps"][0]["executions"][-1]["execution_id"]

    frontend(tree, {"action": "cancel", "execution_id": root_execution})

    assert tree.error == "", tree.error
    assert tree.run["status"] == "cancelled"
    assert _step(tree.run, "sleeper")["executions"][-1]["state"] == "cancelled"
    assert tree.finished
    tree.close()


def test_expanded_steps_get_their_logs_and_errors_keep_tracebacks(
    server: Server, session: FakeSession, watcher: live.Watcher
) -> None:
    run_id = start_run(server, "widget_flows:ticks", 2, 0.01)
    wait_for_run(server, run_id)
    tree = RunTree(run_id, session=session, watcher=watcher)
    second = _step(tree.run, "tick", 1)
    assert tree.details == {}

    tree.expanded = [second["step_id"]]  # as the view does when a step is clicked

    execution_id = second["executions"][0]["execution_id"]
    wait_until(lambda: execution_id in tree.details, 10, "the logs of the expanded step")
    assert [line["message"] for line in tree.details[execution_id]["logs"]] == ["tick 1"]
    assert tree.details[execution_id]["final"] is True
    tree.close()

    failing = start_run(server, "widget_flows:fails", "no good")
    wait_for_run(server, failing)
    tree = RunTree(failing, session=session, watcher=watcher)
    assert tree.run["status"] == "failed"
    error = _step(tree.run, "boom")["executions"][-1]["error"]
    assert error["type"] == "builtins.ValueError" and error["message"] == "no good"
    assert "raise ValueError(message)" in error["traceback"]
    tree.close()


def test_spawned_runs_are_shown_inside_the_tree(
    server: Server, session: FakeSession, watcher: live.Watcher
) -> None:
    run_id = start_run(server, "widget_flows:spawner", 2)
    assert wait_for_run(server, run_id)["result"] == 30
    tree = RunTree(run_id, session=session, watcher=watcher)

    wait_until(lambda: tree.spawned, 10, "the spawned run")
    [(spawned_id, view)] = tree.spawned.items()
    caller = tree.run["steps"][0]["executions"][0]["execution_id"]
    assert view["parent_execution_id"] == caller
    wait_until(lambda: tree.spawned[spawned_id]["status"] == "succeeded", 10, "the spawned run to finish")
    assert tree.spawned[spawned_id]["result"] == 3
    text = tree.text()
    assert f"spawned Run {spawned_id}" in text and "widget_flows:plus" in text
    tree.close()


def test_switcher_creates_a_child_of_the_current_workspace_and_switches_to_it(
    server: Server, session: FakeSession, watcher: live.Watcher, frontend: Frontend
) -> None:
    switcher = WorkspaceSwitcher(session=session, watcher=watcher)
    assert switcher.current == "main" and switcher.project == "default"
    name = _unique("feature")

    frontend(switcher, {"action": "create", "name": name})

    assert switcher.error == "", switcher.error
    on_server = {w["name"]: w for w in session.client().workspaces()}
    assert on_server[name]["base"] == "main"
    assert session.switched == [(name, "main")]
    assert switcher.current == name
    assert {w["name"]: w["base"] for w in switcher.workspaces}[name] == "main"

    frontend(switcher, {"action": "create", "name": name})  # exists already
    assert "exists" in switcher.error
    assert session.switched == [(name, "main")]

    frontend(switcher, {"action": "switch", "name": "main"})
    assert switcher.error == "" and switcher.current == "main"
    assert session.switched[-1] == ("main", None)

    other = _unique("other")
    Client(server.url, server.token).create_workspace(other)  # someone else: seen live
    wait_until(lambda: other in {w["name"] for w in switcher.workspaces}, 10, "the new workspace")
    switcher.close()


def test_a_run_displays_as_its_tree(
    server: Server, session: FakeSession, watcher: live.Watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(widgetbase, "kernel_session", lambda: session)
    monkeypatch.setattr(live, "watcher", lambda: watcher)
    ip = type("Shell", (), {"display_formatter": DisplayFormatter()})()
    register_display(ip)
    run = Client(server.url, server.token).start_run("widget_flows:plus", 2, 3)
    wait_for_run(server, run.id)

    data, _metadata = ip.display_formatter.format(run)

    view = data["application/vnd.jupyter.widget-view+json"]
    assert data["text/plain"].startswith(f"Run {run.id} widget_flows:plus(2, 3) in main: succeeded")
    [tree] = watcher.watching(live.Endpoint.of(session))
    assert isinstance(tree, RunTree) and tree.model_id == view["model_id"]
    assert tree.run["result"] == 5
    # Beside the widget, what JupyterLab renders live from the server, also once the kernel is gone.
    assert data[RUN_MIME_TYPE] == {
        "run_id": run.id,
        "project": "default",
        "url": server.url,
        "view": "main",
        "workspace": "main",
    }
    tree.close()


def test_a_displayed_tree_names_its_run_its_server_and_its_view(
    server: Server, session: FakeSession, watcher: live.Watcher
) -> None:
    run = Client(server.url, server.token).start_run("widget_flows:plus", 2, 3)
    wait_for_run(server, run.id)
    session.workspace = "elsewhere"  # the kernel moved on: a plain re-run would go there
    tree = RunTree(run.id, session=session, watcher=watcher, workspace="main")
    bundle = tree._repr_mimebundle_()
    assert bundle is not None
    data, _metadata = bundle
    assert set(data) == {"application/vnd.jupyter.widget-view+json", RUN_MIME_TYPE, "text/plain"}
    assert data[RUN_MIME_TYPE] == {
        "run_id": run.id,
        "project": "default",
        "url": server.url,
        "view": "main",
        "workspace": "elsewhere",
    }
    tree.close()


def test_an_unreachable_server_or_unknown_run_is_reported_in_the_widget(
    server: Server, session: FakeSession, watcher: live.Watcher
) -> None:
    tree = RunTree("Rnosuchrun", session=session, watcher=watcher)
    assert "no run" in tree.error and tree.run == {}
    tree.close()

    session.url = f"http://127.0.0.1:{free_port()}/coflux"  # nothing listens there
    tree = RunTree("Rnosuchrun", session=session, watcher=watcher)
    assert tree.error.startswith("cannot refresh: cannot reach the Coflux server")
    switcher = WorkspaceSwitcher(session=session, watcher=watcher)
    assert switcher.error.startswith("cannot refresh")
    tree.close()
    switcher.close()


def test_steps_left_running_by_a_failed_run_are_shown_and_cancelled_from_the_tree(
    server: Server, session: FakeSession, watcher: live.Watcher, frontend: Frontend
) -> None:
    run_id = start_run(server, "widget_flows:leaves_behind", 2, 6.0)
    tree = RunTree(run_id, session=session, watcher=watcher)
    wait_until(lambda: tree.run.get("status") == "failed", 30, "the run to fail (seen live)")
    assert tree.run["still_running"] == 2
    assert not tree.finished  # what the run left still runs

    frontend(tree, {"action": "cancel_run"})

    assert tree.error == "", tree.error
    assert tree.notice == f"cancelled 2 executions of run {run_id}"
    sleepers = [s["executions"][-1] for s in tree.run["steps"] if s["target"] == "sleeper"]
    assert [e["state"] for e in sleepers] == ["cancelled", "cancelled"]
    assert tree.run["status"] == "failed" and tree.run["still_running"] == 0
    assert tree.finished
    tree.close()
