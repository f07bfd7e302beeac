"""What the :class:`~coflux.notebook.assetviewer.AssetViewer` shows of one file: a preview made
from (at most :data:`MAX_BYTES` of) its bytes, as JSON the view renders without ever inserting a
file's own markup.

A preview is ``{"kind": ...}`` plus, by kind:

- ``"image"`` (PNG, JPEG, GIF, SVG, WebP): ``media_type``, ``b64`` (shown as an ``<img>``, where an
  SVG's scripts never run);
- ``"text"`` and ``"json"``: ``text`` (JSON pretty-printed), ``truncated``;
- ``"markdown"``: ``html`` rendered by markdown-it with raw HTML escaped (links to
  ``javascript:`` and the like are refused by the renderer), ``truncated``;
- ``"table"`` (CSV, TSV, Parquet): ``columns``, ``rows`` (JSON scalars), ``shape`` (``[rows,
  columns]`` when known), ``dtypes`` (Parquet), ``truncated``;
- ``"none"``, ``"too_large"``, ``"error"``: ``message``, what the user reads instead.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import posixpath
from collections.abc import Callable
from typing import Any, Final

MAX_BYTES: Final = 2 * 1024 * 1024
"""A file larger than this is not fetched for a preview ("too large to preview")."""
TEXT_BYTES: Final = 20_000
"""Text, Markdown and JSON previews show at most this much of the file."""
TABLE_ROWS: Final = 20
CELL_CHARS: Final = 200

Preview = dict[str, Any]

_IMAGES: Final = frozenset({"image/png", "image/jpeg", "image/gif", "image/svg+xml", "image/webp"})
_TEXT_TYPES: Final = frozenset(
    {
        "application/xml",
        "application/javascript",
        "application/x-sh",
        "application/x-yaml",
        "application/toml",
    }
)
_EXTENSIONS: Final = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".geojson": "json",
}
_MEDIA_TYPES: Final = {
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/json": "json",
}


def kind_of(path: str, media_type: str) -> str:
    """The preview kind for a file: ``image``, ``markdown``, ``csv``, ``tsv``, ``parquet``,
    ``json``, ``text``, or ``none`` (a binary file nothing here can show)."""
    media_type = media_type.partition(";")[0].strip().lower()
    if media_type in _IMAGES:
        return "image"
    extension = posixpath.splitext(path.lower())[1]
    found = _MEDIA_TYPES.get(media_type) or _EXTENSIONS.get(extension)
    if found:
        return found
    if media_type.startswith("text/") or media_type in _TEXT_TYPES or media_type.endswith(("+json", "+xml")):
        return "text"
    return "none"


def needs_bytes(path: str, media_type: str, size: int) -> bool:
    """Whether a preview of this file is worth fetching its bytes for."""
    return kind_of(path, media_type) != "none" and 0 <= size <= MAX_BYTES


def without_bytes(path: str, media_type: str, size: int) -> Preview:
    """The preview of a file whose bytes are not fetched (see :func:`needs_bytes`)."""
    if kind_of(path, media_type) == "none":
        return {"kind": "none", "message": f"no preview for {media_type or 'this kind of file'}"}
    return {"kind": "too_large", "message": f"too large to preview ({_size(size)}): download it"}


def preview(path: str, media_type: str, data: bytes) -> Preview:
    """The preview of a file from its bytes. Bytes that don't parse as their kind give an
    ``error`` preview saying why; nothing here raises for a file's content."""
    kind = kind_of(path, media_type)
    if len(data) > MAX_BYTES:
        return without_bytes(path, media_type, len(data))
    maker = _MAKERS.get(kind)
    if maker is None:
        return without_bytes(path, media_type, len(data))
    try:
        return maker(data, media_type)
    except (ValueError, csv.Error, UnicodeDecodeError, OSError) as err:
        return {"kind": "error", "message": f"cannot preview {posixpath.basename(path)} as {kind}: {err}"}


def _image(data: bytes, media_type: str) -> Preview:
    clean = media_type.partition(";")[0].strip().lower()
    return {"kind": "image", "media_type": clean, "b64": base64.b64encode(data).decode("ascii")}


def _decoded(data: bytes, limit: int = TEXT_BYTES) -> tuple[str, bool]:
    """The first ``limit`` bytes as text (a character cut at the limit dropped), and whether
    that is not the whole file. Text that isn't UTF-8 is shown with replacement characters."""
    text = data[:limit].decode("utf-8", errors="replace")
    truncated = len(data) > limit
    if truncated and text.endswith("\ufffd"):
        text = text[:-1]
    return text, truncated


def _text(data: bytes, _media_type: str) -> Preview:
    text, truncated = _decoded(data)
    return {"kind": "text", "text": text, "truncated": truncated}


def _markdown(data: bytes, _media_type: str) -> Preview:
    from markdown_it import MarkdownIt  # rich's Markdown renderer, always installed with it

    text, truncated = _decoded(data)
    html = MarkdownIt("commonmark", {"html": False}).render(text)
    return {"kind": "markdown", "html": html, "truncated": truncated}


def _json(data: bytes, _media_type: str) -> Preview:
    value = json.loads(data.decode("utf-8-sig"))
    text = json.dumps(value, indent=2, ensure_ascii=False)
    truncated = len(text) > TEXT_BYTES
    return {"kind": "json", "text": text[:TEXT_BYTES], "truncated": truncated}


def _cell(value: Any) -> Any:
    """A table cell as a JSON scalar: numbers and strings as they are, the rest as text."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _delimited(data: bytes, delimiter: str) -> Preview:
    text, truncated = _decoded(data.removeprefix(b"\xef\xbb\xbf"), MAX_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [_cell(c) for c in next(reader, [])]
    rows = []
    count = 0
    for row in reader:
        if count < TABLE_ROWS:
            rows.append([_cell(c) for c in row])
        count += 1
    width = max([len(columns), *(len(r) for r in rows)])
    return {
        "kind": "table",
        "columns": columns,
        "rows": rows,
        "shape": [count, width],
        "truncated": truncated or count > len(rows),
    }


def _csv(data: bytes, _media_type: str) -> Preview:
    return _delimited(data, ",")


def _tsv(data: bytes, _media_type: str) -> Preview:
    return _delimited(data, "\t")


def _parquet(data: bytes, _media_type: str) -> Preview:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return {"kind": "none", "message": "install pyarrow to preview Parquet files"}
    try:
        file = pq.ParquetFile(io.BytesIO(data))
        schema = file.schema_arrow
        head = next(file.iter_batches(batch_size=TABLE_ROWS), None)
    except Exception as err:  # pyarrow raises its own exception types for a corrupt file
        raise ValueError(str(err)) from err
    columns = [str(name) for name in schema.names]
    rows = [[_cell(v) for v in row.values()] for row in head.to_pylist()] if head is not None else []
    total = int(file.metadata.num_rows)
    return {
        "kind": "table",
        "columns": columns,
        "rows": rows,
        "shape": [total, len(columns)],
        "dtypes": {str(field.name): str(field.type) for field in schema},
        "truncated": total > len(rows),
    }


_MAKERS: Final[dict[str, Callable[[bytes, str], Preview]]] = {
    "image": _image,
    "text": _text,
    "markdown": _markdown,
    "json": _json,
    "csv": _csv,
    "tsv": _tsv,
    "parquet": _parquet,
}


def _size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"
