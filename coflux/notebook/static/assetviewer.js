// The AssetViewer view (anywidget ES module, no build step, no imports; assets.js renders the content).
// Model traits: asset, error, notice.
// Sends {action: "asset_preview", asset_id, path} | {action: "asset_download", asset_id, path};
// receives {download: path, asset_id, media_type} with the file's bytes as a buffer.

export default {
  render({ model, el }) {
    const root = h("div", { class: "coflux-assetviewer" });
    el.append(root);
    const send = (message) => model.send(message);

    function draw() {
      const asset = model.get("asset") || {};
      const error = model.get("error");
      const notice = model.get("notice");
      fill(
        root,
        error ? h("div", { class: "coflux-error", role: "alert", text: error }) : null,
        notice && !error ? h("div", { class: "coflux-notice", text: notice }) : null,
        asset.asset_id ? assetContent(asset, send) : h("div", { class: "coflux-empty", text: "loading…" }),
      );
    }

    const received = (content, buffers) => saveDownload(content, buffers);
    const names = ["asset", "error", "notice"];
    for (const name of names) model.on(`change:${name}`, draw);
    model.on("msg:custom", received);
    draw();
    return () => {
      for (const name of names) model.off(`change:${name}`, draw);
      model.off("msg:custom", received);
    };
  },
};
