// An asset's content: its files with their previews and download links. Shared by the AssetViewer
// and the RunTree's assets section (widgets.py puts this file in front of their modules, after
// dom.js). `asset` is what coflux.notebook.assetviewer.load returns; `send` posts
// {action: "asset_preview" | "asset_download", asset_id, path} to the kernel.

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

export function formatSize(size) {
  if (typeof size !== "number" || !isFinite(size)) return "";
  if (size < 1024) return `${size} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

// The Jupyter server's base URL as the page knows it, or null outside Jupyter.
function jupyterBaseUrl() {
  if (typeof document === "undefined") return null;
  const fromBody = document.body && document.body.dataset ? document.body.dataset.baseUrl : undefined;
  if (fromBody) return fromBody;
  const script = typeof document.getElementById === "function" ? document.getElementById("jupyter-config-data") : null;
  if (!script) return null;
  try {
    return JSON.parse(script.textContent).baseUrl || null;
  } catch {
    return null;
  }
}

// The REST URL of a file when the page is served by the kernel's Coflux server (the browser's Jupyter
// login then authenticates it); null when it isn't or can't be told (the kernel fetches it then).
export function fileUrl(asset, path, base = jupyterBaseUrl(), here = typeof location === "undefined" ? null : location.href) {
  if (!base || !here || !asset.files || !asset.api_url) return null;
  let page;
  let api;
  try {
    page = new URL(`${base.endsWith("/") ? base : `${base}/`}coflux`, here);
    api = new URL(asset.api_url);
  } catch {
    return null;
  }
  const sameHost = page.hostname === api.hostname || (LOOPBACK.has(page.hostname) && LOOPBACK.has(api.hostname));
  const samePath = page.pathname.replace(/\/+$/, "") === api.pathname.replace(/\/+$/, "");
  if (!sameHost || !samePath || page.port !== api.port || page.protocol !== api.protocol) return null;
  const quoted = path.split("/").map(encodeURIComponent).join("/");
  return new URL(`${page.pathname.replace(/coflux$/, "")}${asset.files}${quoted}`, page).href;
}

function baseName(path) {
  return path.split("/").pop() || path;
}

// A file the kernel sent ({download, media_type} + its bytes): saved through a Blob URL.
function saveDownload(content, buffers) {
  if (!content || typeof content.download !== "string" || !buffers || !buffers.length) return false;
  const blob = new Blob(buffers, { type: content.media_type || "application/octet-stream" });
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: baseName(content.download), style: "display: none" });
  if (document.body) document.body.append(link);
  link.click();
  if (typeof link.remove === "function") link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return true;
}

function previewTable(preview) {
  const [rows, columns] = preview.shape || [preview.rows.length, preview.columns.length];
  const shown = preview.rows.length < rows ? `first ${preview.rows.length} of ${rows} rows` : `${rows} rows`;
  const dtypes = preview.dtypes || {};
  return h(
    "div",
    { class: "coflux-preview-table-wrap" },
    h(
      "table",
      { class: "coflux-preview-table" },
      h("caption", { text: `${shown} × ${columns} columns` }),
      h("thead", {}, h("tr", {}, preview.columns.map((c) => h("th", { title: dtypes[c] ?? null, text: String(c ?? "") })))),
      h("tbody", {}, preview.rows.map((row) => h("tr", {}, row.map((cell) => h("td", { text: cell === null ? "" : String(cell) }))))),
    ),
  );
}

function truncatedNote(preview, what) {
  return preview.truncated ? h("div", { class: "coflux-preview-note", text: `(${what})` }) : null;
}

function previewNode(entry, preview) {
  switch (preview.kind) {
    case "image":
      // The kernel sends the bytes; JupyterLab's output (no kernel) gives the file's URL.
      return h("img", { class: "coflux-preview-image", alt: entry.path, src: preview.url ?? `data:${preview.media_type};base64,${preview.b64}` });
    case "text":
    case "json":
      return [h("pre", { class: "coflux-preview-text", text: preview.text }), truncatedNote(preview, "the beginning of the file")];
    case "markdown": {
      // Rendered in the kernel by markdown-it with raw HTML escaped: the file's own markup never gets here.
      const node = h("div", { class: "coflux-preview-markdown" });
      node.innerHTML = preview.html;
      return [node, truncatedNote(preview, "the beginning of the file")];
    }
    case "table":
      return previewTable(preview);
    default:
      return h("div", { class: "coflux-preview-message", "data-kind": preview.kind, text: preview.message || "no preview" });
  }
}

function downloadNode(asset, entry, send) {
  const url = fileUrl(asset, entry.path);
  if (url) return h("a", { class: "coflux-asset-download", "data-via": "link", href: url, download: baseName(entry.path), text: "download" });
  return h("a", {
    class: "coflux-asset-download",
    "data-via": "kernel",
    href: "#",
    text: "download",
    onclick: (event) => {
      event.preventDefault();
      send({ action: "asset_download", asset_id: asset.asset_id, path: entry.path });
    },
  });
}

function entryNode(asset, entry, send) {
  const preview = (asset.previews || {})[entry.path];
  return h(
    "div",
    { class: "coflux-asset-entry", "data-path": entry.path, "data-kind": preview ? preview.kind : "pending" },
    h(
      "div",
      { class: "coflux-asset-entry-head" },
      h("span", { class: "coflux-asset-path", text: entry.path }),
      h("span", { class: "coflux-asset-size", text: formatSize(entry.size) }),
      h("span", { class: "coflux-asset-type", text: entry.media_type }),
      downloadNode(asset, entry, send),
    ),
    h(
      "div",
      { class: "coflux-asset-preview" },
      preview
        ? previewNode(entry, preview)
        : h("button", { class: "coflux-asset-show", text: "preview", onclick: () => send({ action: "asset_preview", asset_id: asset.asset_id, path: entry.path }) }),
    ),
  );
}

function assetContent(asset, send) {
  const entries = asset.entries || [];
  const total = entries.reduce((sum, e) => sum + (e.size || 0), 0);
  return h(
    "div",
    { class: "coflux-asset", "data-asset-id": asset.asset_id },
    h(
      "div",
      { class: "coflux-asset-head" },
      h("span", { class: "coflux-asset-name", text: asset.name || "(unnamed asset)" }),
      h("span", { class: "coflux-asset-id", text: asset.asset_id }),
      h("span", { class: "coflux-asset-count", text: `${entries.length} file${entries.length === 1 ? "" : "s"}, ${formatSize(total)}` }),
      asset.execution_id ? h("span", { class: "coflux-asset-origin", text: `persisted by ${asset.execution_id}` }) : null,
    ),
    entries.length ? entries.map((e) => entryNode(asset, e, send)) : h("div", { class: "coflux-empty", text: "no files" }),
  );
}
