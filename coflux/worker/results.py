"""The ``complete`` messages a worker's session keeps until the server acknowledges them (on the
session's event loop): numbered with a per-session ``seq``, re-sent in that order after a
reconnect, and, while kept, the execution they are for is still held (``hello`` lists it)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from coflux.models import JSON, ExecutionId
from coflux.protocol import Message


class Results:
    def __init__(self) -> None:
        self._seq = 0
        self._unacked: dict[int, Message] = {}
        self._held: dict[ExecutionId, int] = {}
        """The latest unacknowledged result's seq, by execution."""

    def add(self, execution_id: ExecutionId, outcome: dict[str, JSON]) -> Message:
        """The ``complete`` for ``outcome``, numbered and kept."""
        self._seq += 1
        message = {"type": "complete", "seq": self._seq, "execution_id": execution_id, "outcome": outcome}
        self._unacked[self._seq] = message
        self._held[execution_id] = self._seq
        return message

    def acknowledge(self, seqs: Iterable[int]) -> list[Message]:
        """Forget the results ``ack`` lists; returns those that were still kept."""
        acked = []
        for seq in seqs:
            message = self._unacked.pop(seq, None)
            if message is None:
                continue
            if self._held.get(message["execution_id"]) == seq:
                del self._held[message["execution_id"]]
            acked.append(message)
        return acked

    def holds(self, execution_id: ExecutionId) -> bool:
        """Whether a result of ``execution_id`` waits for its acknowledgement."""
        return execution_id in self._held

    def held(self) -> Iterator[ExecutionId]:
        return iter(self._held)

    def unacknowledged(self) -> list[Message]:
        """What to re-send after a reconnect, in the order first sent."""
        return [self._unacked[seq] for seq in sorted(self._unacked)]

    def __len__(self) -> int:
        return len(self._unacked)
