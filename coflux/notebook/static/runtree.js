// The RunTree view (anywidget ES module, no build step, no imports).
// Model traits: run, spawned, view, workspace, workspaces, expanded, details, assets, error, notice.
// Sends {action: "rerun", step_id, workspace?, parents?} | {action: "cancel", execution_id}
//       | {action: "cancel_run"} | {action: "logs", execution_id} | {action: "refresh"}
//       | {action: "asset", asset_id} | {action: "asset_preview" | "asset_download", asset_id, path}.

const LIVE = new Set(["queued", "assigned", "running"]);

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  if (seconds < 0) seconds = 0;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

function started(execution) {
  return execution.assigned_at ?? execution.created_at ?? null;
}

function durationNode(execution) {
  const start = started(execution);
  if (start === null) return null;
  if (LIVE.has(execution.state)) {
    if (execution.state === "queued") return h("span", { class: "coflux-duration", text: "" });
    return h("span", {
      class: "coflux-duration coflux-ticking",
      "data-since": start,
      text: formatDuration(Date.now() / 1000 - start),
    });
  }
  const end = execution.completed_at;
  return h("span", { class: "coflux-duration", text: end ? formatDuration(end - start) : "" });
}

export // A step's arguments as one line, from the server's previews (older servers: its descriptors).
function argumentsText(step) {
  return (step.arguments_preview ?? (step.arguments || []).map((a) => describeValue(a))).join(", ");
}

// The arguments in short beside a step's target, so calls of one task are told apart at a glance;
// the whole line is its tooltip (and in the step's details).
const SHORT_ARGUMENTS = 40;
function callArguments(step) {
  const full = argumentsText(step);
  const short = full.length > SHORT_ARGUMENTS ? `${full.slice(0, SHORT_ARGUMENTS - 1)}…` : full;
  return h("span", { class: "coflux-call-args", title: `(${full})`, text: `(${short})` });
}

function describeValue(value) {
  if (value === null || value === undefined) return "None";
  if (typeof value === "object" && !Array.isArray(value) && typeof value.type === "string") {
    if (value.type === "execution") return `<execution ${value.execution_id}>`;
    if (value.type === "asset") return `<asset ${value.name ?? value.asset_id}>`;
    if (value.type === "object") return `<${value.class}, ${value.size} bytes>`;
  }
  const text = JSON.stringify(value);
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

// The worker's preview on a value's descriptor ({text, table?, image?}), if it has one.
function previewOf(value) {
  return value && typeof value === "object" && !Array.isArray(value) && value.preview && typeof value.preview === "object"
    ? value.preview
    : null;
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

// A DataFrame's or Series' head: column names, their dtypes, the first rows, and the whole shape.
function tableNode(table) {
  const columns = Array.isArray(table.columns) ? table.columns : [];
  const rows = Array.isArray(table.rows) ? table.rows : [];
  const [height, width] = Array.isArray(table.shape) ? table.shape : [rows.length, columns.length];
  const dtypes = table.dtypes || {};
  const more = height > rows.length || width > columns.length;
  return h(
    "div",
    { class: "coflux-value-table" },
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h("tr", {}, columns.map((c) => h("th", { text: c }))),
        h("tr", { class: "coflux-dtypes" }, columns.map((c) => h("th", { text: dtypes[c] ?? "" }))),
      ),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((v) => h("td", { class: typeof v === "string" ? "coflux-cell-text" : null, text: cellText(v) }))))),
    ),
    h("div", {
      class: "coflux-value-shape",
      text: `${height} row${height === 1 ? "" : "s"} × ${width} column${width === 1 ? "" : "s"}${more ? `, the first ${rows.length} shown` : ""}`,
    }),
  );
}

function imageNode(image, text) {
  if (image.media_type !== "image/png" || typeof image.b64 !== "string") return null;
  return h(
    "div",
    { class: "coflux-value-thumbnail" },
    h("img", {
      class: "coflux-value-image",
      src: `data:image/png;base64,${image.b64}`,
      width: image.width,
      height: image.height,
      alt: text,
      title: text,
    }),
  );
}

// What a value shows beyond its line of text: its table or its thumbnail, if the worker made one.
function richValue(value, text) {
  const preview = previewOf(value);
  if (!preview) return null;
  return [preview.table ? tableNode(preview.table) : null, preview.image ? imageNode(preview.image, text) : null];
}

// A value as the RunTree shows it, wherever it shows (the run's result, a step's arguments and
// results): its line of text (the server's preview, else the worker's, else its descriptor) in a
// <code>, then its table or thumbnail. `attrs` go on the <code>.
export function renderValue(value, text, attrs = {}) {
  const shown = text ?? previewOf(value)?.text ?? describeValue(value);
  const code = h("code", { ...attrs, class: ["coflux-value", attrs.class].filter(Boolean).join(" "), text: shown });
  return [code, ...(richValue(value, shown) || [])]; // flat: h() flattens one level only
}

function marks(step, executions, spawnedHere) {
  const found = [];
  const add = (mark, text, title) => found.push(h("span", { class: "coflux-mark", "data-mark": mark, title, text }));
  for (const e of executions) {
    if (e.cached) add("cached", e.cached_from ? `cached ← ${e.cached_from}` : "cached", `#${e.attempt} reused a result`);
    if (e.state === "deferred") add("deferred", e.deferred_to ? `deferred → ${e.deferred_to}` : "deferred");
    if (e.retry) add("retry", `retry #${e.attempt}`);
    if (e.rerun) add("rerun", `re-run #${e.attempt}`, `re-run in ${e.workspace}`);
    if (e.rerun_parents) add("rerun-parents", e.fixed_step ? `after ${e.fixed_step} was fixed` : "then its parents", e.fixed_step ? `#${e.attempt} re-runs this step because ${e.fixed_step} succeeded on re-run; its parents follow once it succeeds` : `#${e.attempt}: once it succeeds, its parent is re-run, and so on up to the root`);
    if (e.state === "timed_out") add("timed-out", "timed out", `#${e.attempt}`);
    if (e.after_run_ended) add("after-end", "after the run ended", `#${e.attempt} is still ${e.state}: the run has ended, this goes on until it finishes or the run is cancelled`);
  }
  if (step.memoised) add("memo", "memo");
  if (spawnedHere || executions.some((e) => e.state === "spawned")) add("spawned", "spawned");
  return found;
}

// What ended an execution that was cancelled, as the server recorded it ("cancelled by the user").
function reason(execution) {
  return execution && execution.state === "cancelled" && execution.error ? execution.error.message || "" : "";
}

function workspaceChips(executions) {
  const names = [...new Set(executions.map((e) => e.workspace))];
  return names.map((name) => h("span", { class: "coflux-ws", "data-workspace": name, text: name }));
}

// Everything the recursive renderers need, built once per render.
function index(run, spawned) {
  const children = new Map(); // parent execution id -> [step]
  const runsUnder = new Map(); // parent execution id -> [run id]
  const addRuns = (view) => {
    for (const s of view.spawned_runs || []) {
      if (!runsUnder.has(s.parent_execution_id)) runsUnder.set(s.parent_execution_id, []);
      if (!runsUnder.get(s.parent_execution_id).includes(s.run_id)) runsUnder.get(s.parent_execution_id).push(s.run_id);
    }
  };
  for (const view of [run, ...Object.values(spawned)]) {
    for (const step of view.steps || []) {
      // A spawned run's root step may name its caller: that nesting is the spawned run's.
      if (!step.parent_execution_id || !step.parent_execution_id.startsWith(`${view.run_id}:`)) continue;
      if (!children.has(step.parent_execution_id)) children.set(step.parent_execution_id, []);
      children.get(step.parent_execution_id).push(step);
    }
    addRuns(view);
  }
  return { children, runsUnder, spawned };
}

// -- Assets: the assets an execution persisted (the run view's "assets") and those in its result.
export function executionAssets(execution) {
  const found = new Map();
  for (const a of execution.assets || []) found.set(a.asset_id, { asset_id: a.asset_id, name: a.name, entries: a.entries, how: "persisted" });
  const walk = (value, depth) => {
    if (!value || typeof value !== "object" || depth > 6) return;
    if (value.type === "asset" && typeof value.asset_id === "string") {
      if (!found.has(value.asset_id)) found.set(value.asset_id, { asset_id: value.asset_id, name: value.name, entries: value.entries, how: "returned" });
      return;
    }
    for (const item of Array.isArray(value) ? value : Object.values(value)) walk(item, depth + 1);
  };
  walk(execution.result, 0);
  return [...found.values()];
}

function assetsSection(execution, model, state, send) {
  const found = executionAssets(execution);
  if (!found.length) return null;
  const loaded = model.get("assets") || {};
  return h(
    "div",
    { class: "coflux-assets" },
    h("span", { class: "coflux-label", text: "assets" }),
    found.map((a) => {
      const open = state.openAssets.has(a.asset_id);
      const toggle = () => {
        if (open) state.openAssets.delete(a.asset_id);
        else state.openAssets.add(a.asset_id);
        if (!open && !loaded[a.asset_id]) send({ action: "asset", asset_id: a.asset_id });
        state.redraw();
      };
      const count = typeof a.entries === "number" ? `${a.entries} file${a.entries === 1 ? "" : "s"}` : "";
      return h(
        "div",
        { class: "coflux-asset-item", "data-asset-id": a.asset_id, "data-how": a.how },
        h(
          "div",
          { class: "coflux-asset-row" },
          h("span", { class: "coflux-asset-name", text: a.name || "(unnamed asset)" }),
          h("span", { class: "coflux-asset-id", text: a.asset_id }),
          h("span", { class: "coflux-asset-count", text: count }),
          h("span", { class: "coflux-asset-how", text: a.how }),
          h("button", { class: "coflux-asset-view", "aria-expanded": open ? "true" : "false", text: open ? "hide" : "View", onclick: toggle }),
        ),
        open ? (loaded[a.asset_id] ? assetContent(loaded[a.asset_id], send) : h("div", { class: "coflux-loading", text: "loading asset…" })) : null,
      );
    }),
  );
}
// -- end of assets

export default {
  render({ model, el }) {
    const state = { choice: new Map(), scroll: 0, openAssets: new Set() };
    const root = h("div", { class: "coflux-runtree" });
    el.append(root);

    const send = (message) => model.send(message);
    const toggle = (stepId) => {
      const expanded = new Set(model.get("expanded") || []);
      if (expanded.has(stepId)) expanded.delete(stepId);
      else expanded.add(stepId);
      model.set("expanded", [...expanded]); // redraws through change:expanded
      model.save_changes();
    };

    function details(step, executions) {
      const session = model.get("workspace");
      const live = [...executions].reverse().find((e) => LIVE.has(e.state));
      const options = (model.get("workspaces") || []).filter((w) => w.state !== "archived");
      const chosen = state.choice.get(step.step_id) ?? session;
      const select = h(
        "select",
        { class: "coflux-rerun-workspace", title: "workspace to re-run in" },
        options.map((w) => h("option", { value: w.name, selected: w.name === chosen, text: w.name })),
      );
      select.addEventListener("change", () => state.choice.set(step.step_id, select.value));
      select.addEventListener("click", (event) => event.stopPropagation());
      const actions = h(
        "div",
        { class: "coflux-actions" },
        h("button", {
          class: "coflux-rerun",
          title: `re-run this step in the kernel's workspace (${session})`,
          text: `re-run in ${session}`,
          onclick: () => send({ action: "rerun", step_id: step.step_id }),
        }),
        h("span", { class: "coflux-or", text: "or in" }),
        select,
        h("button", {
          class: "coflux-rerun-in",
          text: "re-run",
          onclick: () => send({ action: "rerun", step_id: step.step_id, workspace: select.value }),
        }),
        step.parent_execution_id
          ? h("button", {
              class: "coflux-rerun-parents",
              title: `re-run this step in ${session}; once it succeeds, re-run its parent (reusing this step), and so on up to the root, so the run can succeed`,
              text: "re-run, then its parents",
              onclick: () => send({ action: "rerun", step_id: step.step_id, parents: true }),
            })
          : null,
        live
          ? h("button", {
              class: "coflux-cancel",
              "data-execution-id": live.execution_id,
              text: `cancel #${live.attempt}`,
              onclick: () => send({ action: "cancel", execution_id: live.execution_id }),
            })
          : null,
      );
      const args = argumentsText(step);
      return h(
        "div",
        { class: "coflux-details", "data-step-id": step.step_id },
        h("div", { class: "coflux-arguments" }, h("span", { class: "coflux-label", text: "arguments" }), h("code", { text: `(${args})` })),
        argumentValues(step),
        actions,
        executions.map((e) => executionNode(e)),
        executions.length ? null : h("div", { class: "coflux-empty", text: "no execution in this view" }),
      );
    }

    // The arguments that have more to show than their text (a table, a thumbnail), one by one.
    function argumentValues(step) {
      const values = step.arguments || [];
      const texts = step.arguments_preview || [];
      return values.map((value, i) => {
        const rich = richValue(value, texts[i]);
        if (!rich || !rich.some(Boolean)) return null;
        return h(
          "div",
          { class: "coflux-argument", "data-index": i },
          h("span", { class: "coflux-label", text: `argument ${i + 1}` }),
          renderValue(value, texts[i]),
        );
      });
    }

    function executionNode(execution) {
      const info = (model.get("details") || {})[execution.execution_id];
      const logs = info ? info.logs || [] : null;
      const error = execution.error;
      return h(
        "div",
        { class: "coflux-execution", "data-execution-id": execution.execution_id, "data-state": execution.state },
        h(
          "div",
          { class: "coflux-execution-head" },
          h("span", { class: "coflux-attempt", text: `#${execution.attempt}` }),
          h("span", { class: "coflux-state", "data-state": execution.state, text: execution.state.replace("_", " ") }),
          h("span", { class: "coflux-ws", "data-workspace": execution.workspace, text: execution.workspace }),
          durationNode(execution),
          h("span", { class: "coflux-execution-id", text: execution.execution_id }),
          marks({}, [execution], false),
        ),
        "result" in execution
          ? h("div", { class: "coflux-result" }, h("span", { class: "coflux-label", text: "result" }), renderValue(execution.result, execution.result_preview))
          : null,
        assetsSection(execution, model, state, send),
        error
          ? h(
              "div",
              { class: "coflux-execution-error" },
              h("div", { class: "coflux-error-message" }, h("b", { text: error.type || "error" }), `: ${error.message ?? ""}`),
              error.traceback ? h("pre", { class: "coflux-traceback", text: error.traceback }) : null,
            )
          : null,
        logs === null
          ? h("div", { class: "coflux-logs coflux-loading", text: "loading logs…" })
          : h(
              "div",
              { class: "coflux-logs" },
              logs.length
                ? h(
                    "pre",
                    {},
                    logs.map((line) =>
                      h("div", { class: "coflux-log", "data-level": line.level }, `${new Date(line.timestamp * 1000).toLocaleTimeString()} ${line.level} ${line.message}`),
                    ),
                  )
                : h("span", { class: "coflux-empty", text: "no logs" }),
              h("button", { class: "coflux-reload-logs", text: "reload", onclick: () => send({ action: "logs", execution_id: execution.execution_id }) }),
            ),
      );
    }

    function stepNode(step, idx, seen) {
      if (seen.has(step.step_id)) return null;
      seen.add(step.step_id);
      const executions = step.executions || [];
      const latest = executions[executions.length - 1];
      const stateName = latest ? latest.state : "none";
      const open = (model.get("expanded") || []).includes(step.step_id);
      const spawnedHere = executions.some((e) => idx.runsUnder.has(e.execution_id));
      const row = h(
        "div",
        {
          class: "coflux-step",
          "data-step-id": step.step_id,
          "data-state": stateName,
          role: "button",
          tabindex: 0,
          "aria-expanded": open ? "true" : "false",
          onclick: () => toggle(step.step_id),
          onkeydown: (event) => {
            if (event.key === "Enter" || event.key === " ") {
              event.preventDefault();
              toggle(step.step_id);
            }
          },
        },
        h("span", { class: "coflux-toggle", text: open ? "▾" : "▸" }),
        h("span", { class: "coflux-state", "data-state": stateName, text: stateName.replace("_", " ") }),
        h("span", { class: "coflux-target", text: `${step.module}:${step.target}` }),
        callArguments(step),
        latest ? durationNode(latest) : null,
        executions.length > 1 ? h("span", { class: "coflux-attempts", title: "attempts", text: `×${executions.length}` }) : null,
        marks(step, executions, spawnedHere),
        workspaceChips(executions),
        reason(latest) ? h("span", { class: "coflux-reason", text: reason(latest) }) : null,
      );
      const nested = [];
      const multi = executions.filter((e) => idx.children.has(e.execution_id)).length > 1;
      for (const e of executions) {
        const kids = (idx.children.get(e.execution_id) || []).map((child) => stepNode(child, idx, seen)).filter(Boolean);
        const runs = (idx.runsUnder.get(e.execution_id) || []).map((runId) => spawnedNode(runId, idx, seen)).filter(Boolean);
        if (!kids.length && !runs.length) continue;
        if (multi) nested.push(h("li", { class: "coflux-attempt-label", text: `from #${e.attempt} (${e.workspace})` }));
        nested.push(...kids, ...runs);
      }
      return h(
        "li",
        { class: "coflux-step-item" },
        row,
        open ? details(step, executions) : null,
        nested.length ? h("ul", { class: "coflux-steps" }, nested) : null,
      );
    }

    function spawnedNode(runId, idx, seen) {
      const view = idx.spawned[runId];
      if (!view || seen.has(runId)) return null;
      seen.add(runId);
      const top = (view.steps || []).filter((s) => !s.parent_execution_id || !s.parent_execution_id.startsWith(`${runId}:`));
      return h(
        "li",
        { class: "coflux-spawned-run", "data-run-id": runId },
        h(
          "div",
          { class: "coflux-spawned-head" },
          h("span", { class: "coflux-run-status", "data-status": view.status, text: view.status }),
          h("span", { class: "coflux-run-id", text: `spawned run ${runId}` }),
        ),
        h("ul", { class: "coflux-steps" }, top.map((s) => stepNode(s, idx, seen)).filter(Boolean)),
      );
    }

    function header(run) {
      const view = model.get("view");
      const own = run.run_workspace || run.workspace;
      return h(
        "div",
        { class: "coflux-run-header" },
        h("span", { class: "coflux-run-status", "data-status": run.status || "running", text: run.status || "loading" }),
        h("span", { class: "coflux-run-id", text: run.run_id || "" }),
        h("span", {
          class: "coflux-run-view",
          title: "the workspace the run is seen from",
          text: own && view && own !== view ? `in ${own}, seen from ${view}` : own ? `in ${own}` : "",
        }),
        run.status === "failed" && run.error ? h("span", { class: "coflux-run-error", text: `${run.error.type}: ${run.error.message}` }) : null,
        run.status === "cancelled" && run.error ? h("span", { class: "coflux-run-reason", text: run.error.message }) : null,
        run.status === "succeeded" && "result" in run ? renderValue(run.result, run.result_preview, { class: "coflux-run-result" }) : null,
        run.status === "running"
          ? h("button", { class: "coflux-cancel-run", title: "cancel everything of this run", text: "cancel run", onclick: () => send({ action: "cancel_run" }) })
          : null,
        h("button", { class: "coflux-refresh", title: "refresh", text: "↻", onclick: () => send({ action: "refresh" }) }),
      );
    }

    // A run that ended keeps running what it had started (their results can serve a re-run
    // through memo and cache): say so, and offer to stop them.
    function afterEnd(run) {
      const count = run.status && run.status !== "running" ? run.still_running || 0 : 0;
      if (!count) return null;
      return h(
        "div",
        { class: "coflux-after-end", role: "status" },
        h("span", { text: `${count} step${count === 1 ? "" : "s"} still running after the run ${run.status === "cancelled" ? "was cancelled" : run.status}` }),
        h("button", { class: "coflux-cancel-rest", text: "cancel them", onclick: () => send({ action: "cancel_run" }) }),
      );
    }

    function draw() {
      const run = model.get("run") || {};
      const idx = index(run, model.get("spawned") || {});
      const seen = new Set();
      const steps = run.steps || [];
      const top = steps.filter((s) => !s.parent_execution_id || !s.parent_execution_id.startsWith(`${run.run_id}:`));
      const error = model.get("error");
      const notice = model.get("notice");
      fill(
        root,
        header(run),
        afterEnd(run),
        error ? h("div", { class: "coflux-error", role: "alert", text: error }) : null,
        notice && !error ? h("div", { class: "coflux-notice", text: notice }) : null,
        h("ul", { class: "coflux-steps coflux-root" }, top.map((s) => stepNode(s, idx, seen)).filter(Boolean)),
      );
    }

    const tick = setInterval(() => {
      for (const node of root.querySelectorAll(".coflux-ticking")) {
        node.textContent = formatDuration(Date.now() / 1000 - Number(node.dataset.since));
      }
    }, 1000);
    state.redraw = draw;
    const received = (content, buffers) => saveDownload(content, buffers); // an asset's file the kernel sent
    const names = ["run", "spawned", "view", "workspace", "workspaces", "expanded", "details", "assets", "error", "notice"];
    for (const name of names) model.on(`change:${name}`, draw);
    model.on("msg:custom", received);
    draw();
    return () => {
      clearInterval(tick);
      model.off("msg:custom", received);
      for (const name of names) model.off(`change:${name}`, draw);
    };
  },
};
