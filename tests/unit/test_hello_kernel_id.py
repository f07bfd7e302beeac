"""A ``hello``'s optional ``kernel_id``: a notebook kernel says which Jupyter kernel it is."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coflux import protocol
from coflux.errors import ProtocolError

HELLO: dict[str, Any] = {"type": "hello", "protocol": 1, "workspace": "main", "concurrency": 2, "targets": []}


def test_a_plain_worker_says_no_kernel_id() -> None:
    assert "kernel_id" not in protocol.decode_from_worker(json.dumps(HELLO))
    assert protocol.decode_from_worker(json.dumps({**HELLO, "kernel_id": None}))["kernel_id"] is None


def test_a_kernel_id_is_taken_as_sent() -> None:
    kernel_id = "5a2f0a5e-3c1b-4a7e-9d55-0f2b8f0c6a11"
    assert (
        protocol.decode_from_worker(json.dumps({**HELLO, "kernel_id": kernel_id}))["kernel_id"] == kernel_id
    )


@pytest.mark.parametrize("bad", [7, "", "a/b", "x" * 65, ["k"], "-leading"])
def test_a_malformed_kernel_id_is_refused(bad: Any) -> None:
    with pytest.raises(ProtocolError) as refused:
        protocol.decode_from_worker(json.dumps({**HELLO, "kernel_id": bad}))
    assert refused.value.code == "malformed" and "kernel_id" in refused.value.message
