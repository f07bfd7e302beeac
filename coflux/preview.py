"""Tagged JSON as a short, Python-repr-like line for people (docs/server.md, "Reading a run").

``{3: 5}``, ``(1, 2)``, ``b'abc'``, ``datetime.date(2026, 1, 2)``, strings in double quotes as in JSON
(``fetch("Lisbon")``). What only a worker could rebuild shows as the worker's preview stored in its
tag (``Point(x=1, y=2)``, a DataFrame's shape and dtypes, see :mod:`coflux.valuepreviews`), or,
without one, is named by its kind and size: ``<__main__.Model object, 3,025 bytes>``.
An asset reads ``<asset NAME: 3 files: a.csv, b.png, …>``.
Pure and safe on the server: it never unpickles and never reads a blob. A value past the length
limit is cut with ``…``, and rendering stops there, so a huge value costs no more than a short one.
"""

from __future__ import annotations

import json
from typing import Final

from coflux import richvalues, valuepreviews
from coflux.models import JSON
from coflux.serialization import TAG, decode_b64, decode_value, tag_of

PREVIEW_LIMIT: Final = 1000
"""Characters of a preview in the REST run view; the rest is cut with ``…``."""

_EMPTY: Final = {"tuple": "()", "set": "set()", "frozenset": "frozenset()"}
_REFERENCE_KEYS: Final = {"execution": "execution_id", "asset": "asset_id"}


def preview(data: JSON, limit: int = PREVIEW_LIMIT) -> str:
    """``data`` (tagged JSON) as at most ``limit`` characters of Python-like text.

    Malformed tagged JSON raises :class:`~coflux.errors.BadRequest`, as the codec does.
    """
    writer = _Writer(limit)
    writer.value(data)
    text = "".join(writer.parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Writer:
    """Appends the text of a value in pieces, and stops appending once past the limit."""

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self._room = limit + 1  # one character more than fits tells "cut" from "exactly full"

    def write(self, text: str) -> None:
        if self._room > 0:
            self.parts.append(text)
            self._room -= len(text)

    def value(self, data: JSON) -> None:
        if self._room <= 0:
            return
        if isinstance(data, list):
            self.items("[", data, "]")
        elif isinstance(data, dict):
            if TAG in data:
                self.tagged(tag_of(data), data)
            else:
                self.pairs([[key, item] for key, item in data.items()])
        elif isinstance(data, str):
            self.write(json.dumps(data, ensure_ascii=False))  # fetch("Lisbon"), as rows always read
        else:
            self.write(repr(data))

    def items(self, opening: str, items: list[JSON], closing: str) -> None:
        self.write(opening)
        for index, item in enumerate(items):
            if self._room <= 0:
                return
            if index:
                self.write(", ")
            self.value(item)
        self.write(closing)

    def pairs(self, pairs: list[JSON]) -> None:
        self.write("{")
        for index, pair in enumerate(pairs):
            if self._room <= 0:
                return
            assert isinstance(pair, list)  # checked by tag_of (tagged dicts) or built above
            if index:
                self.write(", ")
            self.value(pair[0])
            self.write(": ")
            self.value(pair[1])
        self.write("}")

    def tagged(self, tag: str, data: dict[str, JSON]) -> None:
        if tag == "dict":
            self.pairs(_list(data["items"]))
        elif tag in _EMPTY:
            self.sequence(tag, _list(data["items"]))
        elif tag == "asset":
            self.write(_asset(data))
        elif tag in _REFERENCE_KEYS:
            self.write(f"<{tag} {data[_REFERENCE_KEYS[tag]]}>")
        elif tag in ("bytes", "pickle", "json", *richvalues.TAGS):
            worker = valuepreviews.checked(data.get("preview"))
            self.write(str(worker["text"]) if worker else self.binary(tag, data))
        else:
            self.write(repr(decode_value(tag, str(data["value"]))))

    def sequence(self, tag: str, items: list[JSON]) -> None:
        if not items:
            self.write(_EMPTY[tag])
        elif tag == "tuple":
            self.items("(", items, ",)" if len(items) == 1 else ")")
        elif tag == "set":
            self.items("{", items, "}")
        else:
            self.items("frozenset({", items, "})")

    def binary(self, tag: str, data: dict[str, JSON]) -> str:
        text = data.get("b64")
        if tag == "bytes" and isinstance(text, str):
            # only as many bytes as can show: 4 base64 characters per 3 bytes
            part = text[: 4 * (max(self._room, 0) // 3 + 1)]
            shown = repr(decode_b64(part))
            return shown if len(part) == len(text) else shown[:-1]  # cut below anyway
        size = len(decode_b64(text)) if isinstance(text, str) else int(str(data["size"]))
        kind = {"bytes": "bytes", "json": "value"}.get(tag)
        if kind is None:
            kind = richvalues.summary(data, tag) if tag in richvalues.TAGS else f"{data['class']} object"
        return f"<{kind}, {size:,} bytes>"


def _asset(data: dict[str, JSON]) -> str:
    """``<asset NAME: 3 files: a.csv, b.png, …>``: the line the worker wrote in its preview (it has
    the listing), else built from the tag: its name (else its id) and the number of its files."""
    worker = valuepreviews.checked(data.get("preview"))
    if worker is not None and worker["text"]:
        return str(worker["text"])
    name = data.get("name")
    parts = [f"asset {name if isinstance(name, str) and name else data['asset_id']}"]
    entries = data.get("entries")
    if type(entries) is int and entries >= 0:
        parts.append(f"{entries:,} file{'' if entries == 1 else 's'}")
    return f"<{': '.join(parts)}>"


def _list(data: JSON) -> list[JSON]:
    assert isinstance(data, list)  # checked by tag_of
    return data
