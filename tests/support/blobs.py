"""An in-memory blob store for the value codec's ``put_blob`` and ``get_blob``."""

from __future__ import annotations

import hashlib


class MemoryBlobs:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        self.data[key] = data
        return key

    def get(self, key: str) -> bytes:
        return self.data[key]
