"""The widgets' ES modules: valid syntax, and rendered in node (over a minimal DOM, dom.mjs) from
real widget state, with the classes and attributes the browser tests rely on and the messages
their buttons send."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from coflux.notebook import live
from coflux.notebook.widgetbase import _STATIC
from coflux.notebook.widgets import RunTree, view_source
from tests.support.harness import Server, start_run, wait_for_run, wait_until
from tests.support.notebook import FakeSession

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")
DOM = Path(__file__).resolve().parent / "dom.mjs"
SYNCED = ("run", "spawned", "view", "workspace", "workspaces", "expanded", "details", "error", "notice")


def _node(tmp_path: Path, script: str, state: dict[str, Any], view: str) -> Any:
    """Run ``script`` (an async body with ``dom``, ``state`` and ``viewPath`` in scope) in node."""
    module = tmp_path / view.replace(".js", ".mjs")
    module.write_text(view_source(view), encoding="utf-8")
    (tmp_path / "state.json").write_text(json.dumps(state))
    driver = tmp_path / "driver.mjs"
    driver.write_text(
        f"import * as dom from {json.dumps(DOM.as_uri())};\n"
        f"import {{ readFileSync }} from 'node:fs';\n"
        f"const state = JSON.parse(readFileSync({json.dumps(str(tmp_path / 'state.json'))}, 'utf8'));\n"
        f"const viewPath = {json.dumps(module.as_uri())};\n"
        f"const out = await (async () => {{\n{script}\n}})();\n"
        "console.log(JSON.stringify(out));\n"
    )
    assert NODE is not None
    done = subprocess.run([NODE, str(driver)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("view", sorted(p.name for p in _STATIC.glob("*.js") if p.name != "dom.js"))
def test_each_view_is_a_valid_es_module(tmp_path: Path, view: str) -> None:
    module = tmp_path / view.replace(".js", ".mjs")
    module.write_text(view_source(view), encoding="utf-8")
    assert NODE is not None
    done = subprocess.run(
        [NODE, "--check", str(module)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def _state(
    server: Server, session: FakeSession, workflow: str, *args: Any, expand: str = ""
) -> dict[str, Any]:
    run_id = start_run(server, workflow, *args)
    wait_for_run(server, run_id)
    watcher = live.Watcher()
    try:
        tree = RunTree(run_id, session=session, watcher=watcher)
        if tree.spawned:  # let a spawned run's own view settle too
            tree.refresh()
        if expand:
            tree.expanded = [s["step_id"] for s in tree.run["steps"] if s["target"] == expand]
            tree.refresh()
        state = {name: getattr(tree, name) for name in SYNCED}
        tree.close()
        return state
    finally:
        watcher.close()


RENDER_TREE = """
const { model, el, cleanup } = await dom.render(viewPath, state);
const depth = (node) => {
  let n = 0;
  for (let p = node.parentNode; p; p = p.parentNode) {
    if (p.classList && p.classList.includes("coflux-steps")) n += 1;
  }
  return n;
};
const steps = () => el.querySelectorAll(".coflux-step").map((row) => ({
  id: row.getAttribute("data-step-id"),
  state: row.querySelector(".coflux-state").getAttribute("data-state"),
  target: row.querySelector(".coflux-target").textContent,
  marks: row.querySelectorAll(".coflux-mark").map((m) => m.getAttribute("data-mark")),
  workspaces: row.querySelectorAll(".coflux-ws").map((w) => w.textContent),
  depth: depth(row),
}));
const out = {
  status: el.querySelector(".coflux-run-status").getAttribute("data-status"),
  steps: steps(),
  spawned: el.querySelectorAll(".coflux-spawned-run").map((s) => s.getAttribute("data-run-id")),
  details: el.querySelectorAll(".coflux-details").length,
  text: el.textContent,
};
const first = el.querySelector(".coflux-step");
first.click();
out.expanded = model.get("expanded");
out.saved = model.saved;
const details = el.querySelector(`.coflux-details[data-step-id="${out.expanded[0]}"]`);
out.buttons = ["button.coflux-rerun", "button.coflux-rerun-in", "button.coflux-cancel"]
  .map((s) => details.querySelectorAll(s).length);
out.options = details.querySelector("select.coflux-rerun-workspace")
  .querySelectorAll("option").map((o) => o.getAttribute("value"));
details.querySelector("button.coflux-rerun").click();
const select = details.querySelector("select.coflux-rerun-workspace");
select.value = "other";
details.querySelector("button.coflux-rerun-in").click();
out.sent = model.sent;
out.executions = el.querySelectorAll(".coflux-execution").map((e) => e.getAttribute("data-state"));
out.tracebacks = el.querySelectorAll(".coflux-traceback").map((t) => t.textContent);
out.logs = el.querySelectorAll(".coflux-log").map((t) => t.textContent);
model.set("error", "the server refused");
out.error = el.querySelector(".coflux-error").textContent;
first.click();
out.collapsed = model.get("expanded");
cleanup();
return out;
"""


def test_run_tree_view_renders_the_tree_and_sends_actions(
    tmp_path: Path, server: Server, session: FakeSession
) -> None:
    session.client().create_workspace("other", base="main")
    state = _state(server, session, "widget_flows:spawner", 2)
    run_id = state["run"]["run_id"]
    [spawned_id] = state["spawned"]

    out = _node(tmp_path, RENDER_TREE, state, "runtree.js")

    assert out["status"] == "succeeded"
    assert out["steps"] == [
        {
            "id": f"{run_id}:1",
            "state": "succeeded",
            "target": "widget_flows:spawner",
            "marks": ["spawned"],
            "workspaces": ["main"],
            "depth": 1,
        },
        {
            "id": f"{spawned_id}:1",
            "state": "succeeded",
            "target": "widget_flows:plus",
            "marks": [],
            "workspaces": ["main"],
            "depth": 3,  # the root list, the caller's children, the spawned run's steps
        },
    ]
    assert out["spawned"] == [spawned_id] and out["details"] == 0
    assert "null" not in out["text"] and "undefined" not in out["text"]
    assert out["expanded"] == [f"{run_id}:1"] and out["saved"] == 1
    assert out["buttons"] == [1, 1, 0]  # nothing live: nothing to cancel
    assert "main" in out["options"] and "other" in out["options"]
    assert out["sent"] == [
        {"action": "rerun", "step_id": f"{run_id}:1"},
        {"action": "rerun", "step_id": f"{run_id}:1", "workspace": "other"},
    ]
    assert out["executions"] == ["succeeded"]
    assert out["error"] == "the server refused"
    assert out["collapsed"] == []


def test_run_tree_view_shows_errors_logs_and_a_cancel_button(
    tmp_path: Path, server: Server, session: FakeSession
) -> None:
    state = _state(server, session, "widget_flows:fails", "no good", expand="boom")
    boom = next(s for s in state["run"]["steps"] if s["target"] == "boom")
    boom["executions"][-1]["state"] = "running"  # as if still live
    state["run"]["steps"] = [boom]  # the boom step alone, at the top
    boom["parent_execution_id"] = None

    script = RENDER_TREE.replace("first.click();\nout.expanded", "out.expanded").replace(
        'details.querySelector("button.coflux-rerun").click();',
        'details.querySelector("button.coflux-cancel").click();',
    )
    out = _node(tmp_path, script, state, "runtree.js")

    assert out["status"] == "failed"
    assert out["steps"][0]["state"] == "running"
    assert out["buttons"] == [1, 1, 1]
    execution_id = boom["executions"][-1]["execution_id"]
    assert out["sent"][0] == {"action": "cancel", "execution_id": execution_id}
    assert len(out["tracebacks"]) == 1 and "ValueError: no good" in out["tracebacks"][0]


PREVIEWS = """
const { el, cleanup } = await dom.render(viewPath, state);
const details = el.querySelector(".coflux-details");
const out = {
  header: el.querySelector(".coflux-run-result").textContent,
  arguments: details.querySelector(".coflux-arguments").querySelector("code").textContent,
  results: details.querySelectorAll(".coflux-result").map((r) => r.querySelector("code").textContent),
  rows: el.querySelectorAll(".coflux-step").map((row) => [
    row.querySelector(".coflux-target").textContent,
    row.querySelector(".coflux-call-args").textContent,
  ]),
};
cleanup();
return out;
"""


def test_run_tree_view_shows_readable_previews_in_its_header_and_step_details(
    tmp_path: Path, server: Server, session: FakeSession
) -> None:
    state = _state(server, session, "widget_flows:keyed", 3, expand="pair")

    out = _node(tmp_path, PREVIEWS, state, "runtree.js")

    assert out == {
        "header": "{3: {(3, 3): b'ab'}}",
        "arguments": "((3, 3))",
        "results": ["{(3, 3): b'ab'}"],
        "rows": [["widget_flows:keyed", "(3)"], ["widget_flows:pair", "((3, 3))"]],  # calls told apart
    }


CANCELLED = """
const { model, el, cleanup } = await dom.render(viewPath, state);
const out = {
  status: el.querySelector(".coflux-run-status").getAttribute("data-status"),
  runReason: el.querySelector(".coflux-run-reason").textContent,
  rows: el.querySelectorAll(".coflux-step").map((row) => [
    row.querySelector(".coflux-target").textContent,
    row.getAttribute("data-state"),
    row.querySelector(".coflux-reason")?.textContent ?? null,
  ]),
  rerunParents: el.querySelectorAll("button.coflux-rerun-parents").length,
};
el.querySelector("button.coflux-rerun-parents").click();
out.sent = model.sent;
cleanup();
return out;
"""


def test_run_tree_view_shows_what_cancelled_a_step_and_offers_to_rerun_its_parents(
    tmp_path: Path, server: Server, session: FakeSession
) -> None:
    """A step cancelled by the user, and the workflow that waited on it, with the reasons the
    server recorded (a real worker let the cancellation out of the workflow), and the details'
    button that re-runs a step and then its parents."""
    client = session.client()
    run_id = start_run(server, "widget_flows:hold", 60)

    def sleeping() -> str | None:
        steps = client.run_data(run_id)["steps"]
        live = [e for s in steps[1:] for e in s["executions"] if e["state"] == "running"]
        return live[0]["execution_id"] if live else None

    sleeper = wait_until(sleeping, 30, "the sleeper to run")
    client.cancel(sleeper)
    assert wait_for_run(server, run_id)["status"] == "cancelled"
    watcher = live.Watcher()
    try:
        tree = RunTree(run_id, session=session, watcher=watcher)
        tree.expanded = [s["step_id"] for s in tree.run["steps"] if s["target"] == "sleeper"]
        tree.refresh()
        state = {name: getattr(tree, name) for name in SYNCED}
        tree.close()
    finally:
        watcher.close()

    out = _node(tmp_path, CANCELLED, state, "runtree.js")

    waited = f"cancelled: it waited on {sleeper}, which was cancelled"
    assert out["status"] == "cancelled" and out["runReason"] == waited
    assert out["rows"] == [
        ["widget_flows:hold", "cancelled", waited],
        ["widget_flows:sleeper", "cancelled", "cancelled by the user"],
    ]
    assert out["rerunParents"] == 1  # in the sleeper's details; the root has no parents
    assert out["sent"] == [{"action": "rerun", "step_id": f"{run_id}:2", "parents": True}]


SWITCHER = """
const { model, el, cleanup } = await dom.render(viewPath, state);
const node = (name) => el.querySelector(`.coflux-workspace[data-name="${name}"]`);
const depth = (n) => {
  let d = 0;
  for (let p = n.parentNode; p; p = p.parentNode) if (p.tagName === "UL") d += 1;
  return d;
};
const out = {
  root: el.querySelectorAll(".coflux-workspaces").length,
  names: el.querySelectorAll(".coflux-workspace")
    .map((w) => [w.getAttribute("data-name"), w.getAttribute("data-state"), depth(w)]),
  current: el.querySelectorAll(".coflux-current").map((w) => w.getAttribute("data-name")),
  text: el.textContent,
};
node("main").click();
node("dev").click();  // the current one: nothing to do
const input = el.querySelector("input.coflux-new-workspace");
input.value = "  feature  ";
el.querySelector("button.coflux-create").click();
out.sent = model.sent;
out.cleared = input.value;
model.set("current", "main");
out.after = el.querySelectorAll(".coflux-current").map((w) => w.getAttribute("data-name"));
cleanup();
return out;
"""


def test_workspace_switcher_view_nests_by_base_and_sends_actions(tmp_path: Path) -> None:
    state = {
        "workspaces": [
            {"name": "main", "base": None, "state": "active"},
            {"name": "dev", "base": "main", "state": "active"},
            {"name": "dev/ana", "base": "dev", "state": "paused"},
            {"name": "old", "base": None, "state": "archived"},
        ],
        "current": "dev",
        "project": "default",
        "error": "",
        "notice": "",
    }

    out = _node(tmp_path, SWITCHER, state, "workspaces.js")

    assert out["root"] == 1
    assert out["names"] == [
        ["main", "active", 1],
        ["dev", "active", 2],
        ["dev/ana", "paused", 3],
        ["old", "archived", 1],
    ]
    assert out["current"] == ["dev"]
    assert "null" not in out["text"] and "undefined" not in out["text"]
    assert out["sent"] == [{"action": "switch", "name": "main"}, {"action": "create", "name": "feature"}]
    assert out["cleared"] == ""
    assert out["after"] == ["main"]


AFTER_END = """
const { model, el, cleanup } = await dom.render(viewPath, state);
const notice = el.querySelector(".coflux-after-end");
const out = {
  notice: notice ? notice.textContent : null,
  marks: el.querySelectorAll(".coflux-mark").map((m) => m.getAttribute("data-mark")),
  cancelRun: el.querySelectorAll("button.coflux-cancel-run").length,
};
notice.querySelector("button.coflux-cancel-rest").click();
out.sent = model.sent;
cleanup();
return out;
"""


def test_run_tree_view_shows_steps_still_running_after_the_run_failed_and_cancels_them(
    tmp_path: Path, server: Server, session: FakeSession
) -> None:
    state = _state(server, session, "widget_flows:leaves_behind", 2, 4.0)
    assert state["run"]["status"] == "failed" and state["run"]["still_running"] == 2

    out = _node(tmp_path, AFTER_END, state, "runtree.js")

    assert out["notice"].startswith("2 steps still running after the run failed")
    assert out["marks"].count("after-end") == 2
    assert out["cancelRun"] == 0  # the run itself has ended: only what it left is offered
    assert out["sent"] == [{"action": "cancel_run"}]
