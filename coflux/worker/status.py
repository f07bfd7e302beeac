"""Where a worker is connected, or why it is not: :class:`WorkerStatus`, kept by a
:class:`StatusBoard` that other threads wait on and that tells a listener of every change. The words
for it are here too, so ``coflux worker`` and ``%coflux status`` say the same thing."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from coflux.errors import ConfigurationError, Forbidden, Unauthorized
from coflux.tokens import redact_url

_logger = logging.getLogger("coflux.worker")

State = Literal["connecting", "connected", "waiting", "refused", "stopped"]


@dataclass(frozen=True)
class WorkerStatus:
    """``connecting`` (the first attempt is under way), ``connected`` (welcomed: ``session_id``),
    ``waiting`` (the server can't be reached or lost the connection: ``reason``; retrying with
    backoff), ``refused`` (the server won't take the worker as it is configured: ``refusal``;
    no more attempts) or ``stopped`` (closed by its owner)."""

    state: State
    url: str
    """The URL in use: the one configured, or where the API was found under it (``given_url``)."""
    project: str
    workspace: str
    session_id: str | None = None
    reason: str | None = None
    refusal: BaseException | None = None
    given_url: str | None = None
    """The URL configured, when the API was found elsewhere under it; else ``None``."""

    def headline(self) -> str:
        """One line: where the worker is, or why it is not there."""
        url = redact_url(self.url)
        if self.state == "connected":
            return (
                f"connected to {url}: project {self.project}, workspace {self.workspace}, "
                f"session {self.session_id}"
            )
        if self.state == "waiting":
            return f"waiting for {url}: {self.reason}; retrying"
        if self.state == "refused":
            return f"refused by {url}: {self.reason}"
        if self.state == "stopped":
            return f"stopped (was connected to {url})"
        return f"connecting to {url}: project {self.project}, workspace {self.workspace}"

    def explain_refusal(self, how: str, token_given: bool, who: str = "the worker") -> str:
        """One line: why the server refused ``who`` and, for a token, what to do; ``how`` names
        the way to pass a token there (``--token or COFLUX_TOKEN``)."""
        url = redact_url(self.url)
        if isinstance(self.refusal, ConfigurationError):
            return str(self.refusal)  # a URL that is not Coflux's: it names the URL to use
        if not isinstance(self.refusal, (Unauthorized, Forbidden)):
            return f"{url} refused {who}: {self.reason}"
        remedy = (
            f"pass a worker token of project {self.project} with {how} "
            f"(`coflux tokens create --project {self.project} --scope worker` makes one, "
            "with the server's admin token)"
        )
        if not token_given and isinstance(self.refusal, Unauthorized):
            return f"{url} needs a token: {remedy}"
        if isinstance(self.refusal, Unauthorized) and (self.reason or "").startswith(_NOT_ACCEPTED):
            return f"{url} did not accept the token: {remedy}"  # the server's own hint is the same
        return f"{url} refused {who} ({self.reason}): {remedy}"


_NOT_ACCEPTED: Final = "the token was not accepted"
"""How the server's refusal of a token that is no project's and not its own begins."""


def target_lines(targets: Iterable[Any]) -> list[str]:
    """``module:name (task)``, one per target, sorted."""
    return sorted(f"{t.module}:{t.name} ({t.type.value})" for t in targets)


class StatusBoard:
    """The latest :class:`WorkerStatus`. Updated on the worker's loop; read and waited on from any
    thread; each change is passed to ``listener`` (on the loop: it must be quick)."""

    def __init__(self, initial: WorkerStatus, listener: Callable[[WorkerStatus], None] | None = None) -> None:
        self._status = initial
        self._listener = listener
        self.changed = threading.Condition()

    @property
    def current(self) -> WorkerStatus:
        return self._status

    def update(self, **changes: Any) -> None:
        with self.changed:
            status = dataclasses.replace(self._status, **changes)
            if status == self._status:
                return
            self._status = status
            self.changed.notify_all()
        if self._listener is not None:
            try:
                self._listener(status)
            except Exception:
                _logger.exception("coflux: the worker's status listener failed")

    def wait(self, predicate: Callable[[WorkerStatus], bool], timeout: float | None) -> WorkerStatus:
        """The status once ``predicate`` holds, or the latest after ``timeout`` seconds."""
        with self.changed:
            self.changed.wait_for(lambda: predicate(self._status), timeout)
            return self._status
