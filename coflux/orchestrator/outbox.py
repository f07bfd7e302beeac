"""Messages from the engine to worker sessions: sent as they are made, written one frame per
session when the engine flushes (before a commit, and after its effects)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coflux.orchestrator.state import Session
from coflux.orchestrator.writer import Writer


class Outbox:
    def __init__(self, sessions: Mapping[str, Session], writer: Writer) -> None:
        self._sessions = sessions
        self._writer = writer
        self._dirty: set[Session] = set()

    def send(self, session: Session, message: dict[str, Any]) -> None:
        """To ``session``'s worker, if it is connected (else dropped: it re-sends what it needs)."""
        if session.send is not None:
            session.send(message)
            self._dirty.add(session)

    def send_after_commit(self, session: Session, message: dict[str, Any]) -> None:
        """Send ``message`` once everything written so far is durable (a reply, an ack, an abort)."""
        self._writer.after_commit(lambda: self.send(session, message))

    def send_to(self, session_id: str, message: dict[str, Any]) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            self.send(session, message)

    def flush(self) -> None:
        """Write what each session was sent since the last flush: one frame each."""
        dirty, self._dirty = self._dirty, set()
        for session in dirty:
            if session.flush is not None:
                session.flush()
