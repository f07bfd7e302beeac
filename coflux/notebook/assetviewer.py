"""The :class:`AssetViewer` widget: an asset's files with a preview of each, and a download link
per file. The :class:`~coflux.notebook.widgets.RunTree` shows the same content inline for the
assets its steps persisted or returned.

The kernel reads the asset through the REST API (``assets/{id}`` for the listing,
``assets/{id}/files/{path}`` for a file's bytes, never more than a bounded amount per preview) and
sends the view what :mod:`coflux.notebook.filepreview` makes of it. Downloads go straight from the
browser to the REST API when the page is served by the kernel's Coflux server (the browser's
Jupyter login authenticates them); otherwise the kernel fetches the file and sends it to the view.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, Final, Protocol

import anywidget
import traitlets

from coflux import address
from coflux.assets import ASSET_ID
from coflux.client import Client
from coflux.errors import BadRequest, CofluxError, ServerUnavailable, request_error
from coflux.notebook import filepreview
from coflux.notebook.widgetbase import run_action, static, view_source

_logger = logging.getLogger("coflux.notebook")

PREVIEWED: Final = 24
"""Files previewed when an asset is opened; the others are previewed on demand."""
MAX_KERNEL_DOWNLOAD: Final = 64 * 1024 * 1024
"""The largest file the kernel fetches to hand to the browser (when the browser can't fetch it)."""
_CHUNK: Final = 256 * 1024

Message = dict[str, Any]


class Sender(Protocol):
    """A widget that can send the view a custom message with binary buffers."""

    def send(self, content: Any, buffers: list[bytes] | None = None) -> None: ...


def asset_id_of(asset: Any) -> str:
    """The id of ``asset``: an asset id, or anything with an ``id`` (a ``cf.Asset``, an asset
    found in a value a client read). Raises :class:`~coflux.BadRequest` for anything else."""
    found = asset if isinstance(asset, str) else getattr(asset, "id", None)
    if not isinstance(found, str) or not ASSET_ID.fullmatch(found):
        raise BadRequest(f"not an asset id: {found if isinstance(found, str) else asset!r}")
    return found


def _url(client: Client, asset_id: str, path: str | None = None) -> str:
    project = urllib.parse.quote(client.project, safe="")
    url = f"{client.url}/api/projects/{project}/assets/{asset_id}"
    return url if path is None else f"{url}/files/{urllib.parse.quote(path, safe='/')}"


def _read(client: Client, url: str, limit: int) -> bytes:
    """The body of ``GET url`` with the client's token, read in chunks up to ``limit`` bytes (a
    longer body raises: the caller asked only for files the listing says are small enough)."""
    request = urllib.request.Request(url)
    if client.token:
        request.add_header("Authorization", f"token {client.token}")
    try:
        with urllib.request.urlopen(request, timeout=client.timeout) as response:
            chunks: list[bytes] = []
            received = 0
            while chunk := response.read(_CHUNK):
                received += len(chunk)
                if received > limit:
                    raise BadRequest(f"{url} sent more than {limit} bytes, more than its listing says")
                chunks.append(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as err:
        with err:
            answer = address.Answer(
                err.code, err.headers.get("Content-Type", "") if err.headers else "", err.read()
            )
        error = answer.error()
        raise request_error(*error) if error else request_error("http", f"{url}: HTTP {err.code}") from err
    except (urllib.error.URLError, OSError) as err:
        raise ServerUnavailable(f"cannot reach the Coflux server at {client.url}: {err}") from err


def listing(client: Client, asset_id: str) -> dict[str, Any]:
    """``GET assets/{id}``: ``{"asset_id", "name", "execution_id", "created_at", "entries"}``."""
    data = client.asset_data(asset_id)
    if not isinstance(data.get("entries"), list):
        raise BadRequest(f"the server's listing of {asset_id} is not an asset")
    return data


def file_bytes(client: Client, asset_id: str, path: str, limit: int) -> bytes:
    """A file of an asset, if it is at most ``limit`` bytes."""
    return _read(client, _url(client, asset_id, path), limit)


def entry_preview(client: Client, asset_id: str, entry: dict[str, Any]) -> filepreview.Preview:
    """What the view shows of one entry; a failed fetch becomes an ``error`` preview."""
    path, media_type, size = str(entry["path"]), str(entry.get("media_type") or ""), int(entry["size"])
    if not filepreview.needs_bytes(path, media_type, size):
        return filepreview.without_bytes(path, media_type, size)
    try:
        data = file_bytes(client, asset_id, path, filepreview.MAX_BYTES)
    except CofluxError as err:
        return {"kind": "error", "message": f"cannot fetch {path}: {err}"}
    return filepreview.preview(path, media_type, data)


def load(client: Client, asset_id: str, previewed: int = PREVIEWED) -> dict[str, Any]:
    """What the view of an asset shows: its listing, the previews of its first ``previewed``
    files, and where its files are (``files``: the REST path under the Jupyter base URL;
    ``api_url``: the kernel's Coflux URL, for the view to tell whether the page is served by it)."""
    data = listing(client, asset_id)
    entries = [
        {"path": str(e["path"]), "size": int(e["size"]), "media_type": str(e.get("media_type") or "")}
        for e in data["entries"]
    ]
    previews = {e["path"]: entry_preview(client, asset_id, e) for e in entries[:previewed]}
    project = urllib.parse.quote(client.project, safe="")
    return {
        "asset_id": asset_id,
        "name": data.get("name"),
        "execution_id": data.get("execution_id"),
        "created_at": data.get("created_at"),
        "entries": entries,
        "previews": previews,
        "files": f"coflux/api/projects/{project}/assets/{asset_id}/files/",
        "api_url": client.url,
    }


def with_preview(state: dict[str, Any], client: Client, path: str) -> dict[str, Any]:
    """``state`` (from :func:`load`) with the preview of ``path`` added."""
    entry = next((e for e in state["entries"] if e["path"] == path), None)
    if entry is None:
        raise BadRequest(f"{state['asset_id']} has no file {path!r}")
    previews = {**state["previews"], path: entry_preview(client, state["asset_id"], entry)}
    return {**state, "previews": previews}


def send_file(widget: Sender, client: Client, state: dict[str, Any], path: str) -> str:
    """Fetch ``path`` in the kernel and send it to the view, which saves it (a Blob URL)."""
    entry = next((e for e in state["entries"] if e["path"] == path), None)
    if entry is None:
        raise BadRequest(f"{state['asset_id']} has no file {path!r}")
    if entry["size"] > MAX_KERNEL_DOWNLOAD:
        raise BadRequest(
            f"{path} is too large to download through the kernel ({entry['size']} bytes): "
            f"use `coflux assets download {state['asset_id']}`"
        )
    data = file_bytes(client, state["asset_id"], path, MAX_KERNEL_DOWNLOAD)
    content = {"download": path, "asset_id": state["asset_id"], "media_type": entry["media_type"]}
    widget.send(content, buffers=[data])
    return f"sent {path} ({len(data)} bytes) to the browser"


def required(message: Message, key: str) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"the message lacks {key!r}")
    return value


class AssetViewer(anywidget.AnyWidget):
    """An asset's name, id and files (path, size, media type), each with a preview (images,
    text, Markdown, CSV and Parquet tables, JSON) and a download link.

    ``asset`` is a ``cf.Asset``, anything with an asset ``id``, or an asset id. ``client``
    defaults to the client the asset was read with (``cf.Client(...).asset(id)``,
    ``Run.result()``), else the kernel's session's (:func:`coflux.notebook.kernel.current`)."""

    _esm = view_source("assetviewer.js")
    _css = static("assetviewer.css")

    asset = traitlets.Dict().tag(sync=True)
    """What :func:`load` returns, with previews added as the view asks for them."""
    error = traitlets.Unicode("").tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)

    def __init__(self, asset: Any, *, client: Client | None = None) -> None:
        asset_id = asset_id_of(asset)
        super().__init__()
        self._client = client or _client_of(asset) or _session_client()
        self.on_msg(self._on_custom_message)
        self.asset = load(self._client, asset_id)

    @property
    def asset_id(self) -> str:
        return str(self.asset["asset_id"])

    def preview(self, path: str) -> filepreview.Preview:
        """The preview of one file (fetched now if it wasn't)."""
        if path not in self.asset["previews"]:
            self.asset = with_preview(self.asset, self._client, path)
        preview: filepreview.Preview = self.asset["previews"][path]
        return preview

    def _handlers(self) -> dict[str, Callable[[Message], str]]:
        return {
            "asset_preview": self._on_preview,
            "asset_download": lambda message: send_file(
                self, self._client, self.asset, required(message, "path")
            ),
        }

    def _on_preview(self, message: Message) -> str:
        self.preview(required(message, "path"))
        return ""

    def _on_custom_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        error, notice = run_action(self._handlers(), content)
        with self.hold_sync():
            self.error, self.notice = error, notice

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The widget, with :meth:`text` as the plain-text fallback (nbclient output, logs)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        return {**data, "text/plain": self.text()}, metadata

    def text(self) -> str:
        """The asset as text: its name and id, then a line per file."""
        asset = self.asset
        lines = [
            f"asset {asset.get('name') or '(unnamed)'} {asset['asset_id']}: {len(asset['entries'])} files"
        ]
        lines += [f"  {e['path']}  {e['size']} bytes  {e['media_type']}" for e in asset["entries"]]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"AssetViewer({self.asset_id!r}, {len(self.asset['entries'])} files)"


def _client_of(asset: Any) -> Client | None:
    """The client a ``cf.Asset`` was read with, if it was read by one (its source is then the
    client's :class:`~coflux.handles.ClientAssets`)."""
    source = getattr(asset, "source", None)
    found = getattr(source, "client", None)
    return found if isinstance(found, Client) else None


def _session_client() -> Client:
    from coflux.notebook import kernel  # lazily: the kernel module starts nothing on import

    return kernel.current().client()
