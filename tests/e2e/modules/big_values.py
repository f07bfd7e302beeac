"""A large value from one task to the next (run by a real `coflux worker`)."""

from __future__ import annotations

import hashlib

import coflux as cf


@cf.task()
def produce(megabytes: int) -> bytes:
    return b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() * 32768 for i in range(megabytes))


@cf.task()
def digest(data: bytes) -> list[object]:
    return [len(data), hashlib.sha256(data).hexdigest()]


@cf.workflow()
def carry(megabytes: int) -> list[object]:
    return digest(produce(megabytes))
