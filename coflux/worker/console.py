"""What ``coflux worker`` tells its user, from the worker's status changes (on the worker's thread):

- on stdout, where it is connected (server, project, workspace, session) and the targets it
  serves, one per line; after an outage, that it reconnected;
- on stderr, why it is waiting for the server: once per outage, and again only if the reason
  changes (not at every attempt);
- a refusal it can't get past (a token, a URL that is not Coflux's): kept in :attr:`fatal`, and
  ``stop`` is set so the command ends.

Every line is written whole and flushed, so a file or a pipe gets it at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, TextIO

from coflux.address import relocation_note
from coflux.tokens import redact_url
from coflux.worker.status import WorkerStatus, target_lines

TOKEN_HOW = "--token or COFLUX_TOKEN"


class Console:
    def __init__(
        self,
        targets: Iterable[Any],
        stop: threading.Event,
        out: TextIO,
        err: TextIO,
        token_given: bool,
    ) -> None:
        self._targets = list(targets)
        self._stop = stop
        self._out = out
        self._err = err
        self._token_given = token_given
        self._connected_before = False
        self._said_relocation = False
        self._outage: str | None = None
        """The reason last said during the current outage."""
        self._lock = threading.Lock()
        self.fatal: str | None = None
        """The line that ended the worker: the server refused it for good."""

    def update(self, status: WorkerStatus) -> None:
        with self._lock:
            if status.given_url is not None and not self._said_relocation:
                self._said_relocation = True
                note = relocation_note(status.given_url, status.url)
                self._say(self._out, f"{note} (set --url or COFLUX_URL to it)")
            if status.state == "connected":
                self._connected(status)
            elif status.state == "waiting" and status.reason != self._outage:
                self._outage = status.reason
                self._say(self._err, _capitalized(status.headline()))
            elif status.state == "refused":
                self.fatal = status.explain_refusal(TOKEN_HOW, self._token_given)
                self._stop.set()

    def serving(self, targets: Iterable[Any], reloaded: Iterable[str] = ()) -> None:
        """After ``--dev`` reloaded ``reloaded`` (module names): what is served now."""
        with self._lock:
            self._targets = list(targets)
            self._say(self._out, f"Reloaded {', '.join(reloaded)}")
            self._say_targets()

    def _connected(self, status: WorkerStatus) -> None:
        self._outage = None
        if self._connected_before:
            self._say(self._out, f"Reconnected to {redact_url(status.url)}: session {status.session_id}")
            return
        self._connected_before = True
        self._say(self._out, _capitalized(status.headline()))
        self._say_targets()

    def _say_targets(self) -> None:
        lines = target_lines(self._targets)
        self._say(self._out, f"Serving {len(lines)} target{'s' if len(lines) != 1 else ''}:")
        for line in lines:
            self._say(self._out, f"  {line}")

    @staticmethod
    def _say(stream: TextIO, line: str) -> None:
        stream.write(line + "\n")
        stream.flush()


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]
