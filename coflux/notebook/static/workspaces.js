// The WorkspaceSwitcher view (anywidget ES module, no build step, no imports).
// Model traits: workspaces [{name, base, state}], current, project, error, notice.
// Sends {action: "switch", name} | {action: "create", name} | {action: "refresh"}.

// Children under their base; a workspace whose base is unknown (or a cycle) is a root.
export function forest(workspaces) {
  const names = new Set(workspaces.map((w) => w.name));
  const children = new Map();
  for (const w of workspaces) {
    const parent = w.base && names.has(w.base) && w.base !== w.name ? w.base : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(w);
  }
  for (const list of children.values()) list.sort((a, b) => a.name.localeCompare(b.name));
  return children;
}

export default {
  render({ model, el }) {
    const send = (message) => model.send(message);
    const tree = h("div", { class: "coflux-ws-body" });
    const input = h("input", { class: "coflux-new-workspace", type: "text", spellcheck: "false" });
    const create = () => {
      const name = input.value.trim();
      if (!name) return;
      send({ action: "create", name });
      input.value = "";
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") create();
    });
    const label = h("span", { class: "coflux-create-label" });
    const root = h(
      "div",
      { class: "coflux-workspaces" },
      tree,
      h("div", { class: "coflux-create-row" }, label, input, h("button", { class: "coflux-create", text: "create", onclick: create })),
    );
    el.append(root);

    function node(workspace, children, seen) {
      if (seen.has(workspace.name)) return null;
      seen.add(workspace.name);
      const current = workspace.name === model.get("current");
      const kids = (children.get(workspace.name) || []).map((w) => node(w, children, seen)).filter(Boolean);
      return h(
        "li",
        {},
        h(
          "div",
          {
            class: current ? "coflux-workspace coflux-current" : "coflux-workspace",
            "data-name": workspace.name,
            "data-state": workspace.state,
            role: "button",
            tabindex: 0,
            "aria-current": current ? "true" : null,
            title: current ? "the kernel's workspace" : `switch the kernel to ${workspace.name}`,
            onclick: () => {
              if (!current) send({ action: "switch", name: workspace.name });
            },
            onkeydown: (event) => {
              if ((event.key === "Enter" || event.key === " ") && !current) {
                event.preventDefault();
                send({ action: "switch", name: workspace.name });
              }
            },
          },
          h("span", { class: "coflux-ws-name", text: workspace.name }),
          workspace.state && workspace.state !== "active"
            ? h("span", { class: "coflux-ws-state", "data-state": workspace.state, text: workspace.state })
            : null,
          current ? h("span", { class: "coflux-ws-here", text: "kernel" }) : null,
        ),
        kids.length ? h("ul", {}, kids) : null,
      );
    }

    function draw() {
      const workspaces = model.get("workspaces") || [];
      const children = forest(workspaces);
      const seen = new Set();
      const roots = (children.get(null) || []).map((w) => node(w, children, seen)).filter(Boolean);
      const error = model.get("error");
      const notice = model.get("notice");
      fill(
        tree,
        h(
          "div",
          { class: "coflux-ws-header" },
          h("span", { class: "coflux-ws-title", text: `Workspaces of ${model.get("project") || "the project"}` }),
          h("button", { class: "coflux-refresh", title: "refresh", text: "↻", onclick: () => send({ action: "refresh" }) }),
        ),
        h("ul", { class: "coflux-ws-tree" }, roots),
        error ? h("div", { class: "coflux-error", role: "alert", text: error }) : null,
        notice && !error ? h("div", { class: "coflux-notice", text: notice }) : null,
      );
      label.textContent = `new child of ${model.get("current") || "the current workspace"}:`;
      input.placeholder = "name";
    }

    const names = ["workspaces", "current", "project", "error", "notice"];
    for (const name of names) model.on(`change:${name}`, draw);
    draw();
    return () => {
      for (const name of names) model.off(`change:${name}`, draw);
    };
  },
};
