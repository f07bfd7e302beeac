"""Whether a value needs trust: would a worker decoding this tagged JSON unpickle anything?

The server asks before it starts a run with arguments from a token that may not send pickles (a
submit token; see docs/server.md, "Auth"). Nothing here unpickles; the codec itself is
:mod:`coflux.serialization`.
"""

from __future__ import annotations

import base64
import binascii

from coflux.models import JSON
from coflux.protocol import loads
from coflux.serialization import BLOB_KEY, TAG, BlobGet


def needs_trust(data: JSON, fetch: BlobGet) -> bool:
    """Would a worker decoding ``data`` unpickle anything? True for a ``pickle`` tag anywhere, and
    for a ``json`` value whose content (inline, or its blob read with ``fetch``) has one; content
    that can't be read as JSON counts too. Unpickles nothing; ``fetch``'s errors propagate."""
    pending: list[JSON] = [data]
    fetched: set[str] = set()
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            if item.get(TAG) == "pickle":
                return True
            if item.get(TAG) == "json":
                contents = _json_contents(item, fetch, fetched)
                if contents is None:
                    return True
                pending.extend(contents)
            pending.extend(item.values())
    return False


def _json_contents(data: dict[str, JSON], fetch: BlobGet, fetched: set[str]) -> list[JSON] | None:
    """What a ``json`` value holds: its inline text and its blob (a decoder reads one of them; both
    are looked at). None if either isn't strict JSON."""
    raws: list[bytes] = []
    if isinstance(data.get("b64"), str):
        try:
            raws.append(base64.b64decode(data["b64"], validate=True))
        except (binascii.Error, ValueError):
            return None
    blob = data.get("blob")
    if isinstance(blob, str) and BLOB_KEY.match(blob) and blob not in fetched:
        fetched.add(blob)
        raws.append(fetch(blob))
    try:
        return [loads(raw) for raw in raws]
    except ValueError:
        return None
