"""Values to and from the wire for a worker: :mod:`coflux.serialization` with the worker's blob
transport and its handles for referenced executions and assets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coflux import serialization
from coflux.models import JSON

if TYPE_CHECKING:
    from coflux.worker.context import Channel


_PLAIN = (type(None), bool, int, str)
"""Types that are their own tagged JSON, both ways (exactly these: a subclass is pickled)."""


def encode(value: Any, channel: Channel) -> JSON:
    """Tagged JSON for ``value``; large bytes and pickles are uploaded as blobs first."""
    if type(value) in _PLAIN:
        return value  # the common small argument or result, without building an encoder
    return serialization.serialize(value, channel.put_blob)


def decode(data: JSON, channel: Channel) -> Any:
    """The Python value of tagged JSON; referenced executions become ``Execution`` handles."""
    if type(data) in _PLAIN:
        return data
    return serialization.deserialize(data, channel.get_blob, execution=channel.execution, asset=channel.asset)
