"""``Worker``: the synchronous face of a worker. It owns a :class:`~coflux.background.BackgroundLoop`
(an asyncio loop on a daemon thread, never the caller's loop, so it works inside a Jupyter kernel),
on which the session lives; the caller's threads reach the session through its channel."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from coflux.background import BackgroundLoop
from coflux.errors import CofluxError
from coflux.tokens import redact_url
from coflux.worker import context
from coflux.worker.session import Session
from coflux.worker.settings import WorkerSettings, resolve_settings
from coflux.worker.status import WorkerStatus
from coflux.worker.targets import Target

_logger = logging.getLogger("coflux.worker")


class Worker:
    """Connects to the server, declares ``targets`` and runs the executions it is sent.

    ``start()`` returns at once; the connection is made (and re-made after any loss) in the
    background, until the server refuses the worker for good. ``on_status`` is told of every
    change of :meth:`status`, on the worker's thread. ``print()`` inside executions goes to their
    logs while a worker runs.
    """

    def __init__(
        self,
        targets: Iterable[Target[..., Any]] = (),
        *,
        url: str | None = None,
        token: str | None = None,
        project: str | None = None,
        workspace: str | None = None,
        concurrency: int | None = None,
        register: bool = False,
        provides: dict[str, list[str]] | None = None,
        inline_limit: int | None = None,
        large_limit: int | None = None,
        settings: WorkerSettings | None = None,
        asset_factory: Callable[[str], Any] | None = None,
        on_status: Callable[[WorkerStatus], None] | None = None,
    ) -> None:
        self.settings = settings or resolve_settings(
            url,
            token,
            project,
            workspace,
            concurrency=concurrency,
            register=register,
            provides=provides,
            inline_limit=inline_limit,
            large_limit=large_limit,
        )
        self._targets = list(targets)
        self._asset_factory = asset_factory
        self._on_status = on_status
        self._background: BackgroundLoop | None = None
        self._session: Session | None = None
        self._main: concurrent.futures.Future[None] | None = None

    @property
    def session_id(self) -> str | None:
        return self._session.session_id if self._session else None

    @property
    def connected(self) -> bool:
        return self._session is not None and self._session.connected

    def start(self) -> None:
        if self._session is not None:
            raise CofluxError("the worker is already started")
        background = BackgroundLoop("coflux-worker")
        background.start()
        session = Session(self.settings, self._targets, background.loop, self._asset_factory, self._on_status)
        self._background, self._session = background, session
        self._main = background.submit(session.run)
        context.install_capture()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection (after up to ``timeout`` s for unacknowledged results) and stop.
        Executions still running are left to the server, which marks them abandoned."""
        session, background, main = self._session, self._background, self._main
        if session is None or background is None or main is None:
            return
        deadline = time.monotonic() + timeout
        try:
            background.run(session.close, timeout / 2, timeout=timeout)
            main.result(max(0.1, deadline - time.monotonic()))
        except Exception:
            _logger.warning("coflux: the worker did not stop cleanly", exc_info=True)
            main.cancel()
        finally:
            background.stop(max(0.1, deadline - time.monotonic()))
            session.reject_all(CofluxError("the worker has stopped"))
            context.uninstall_capture()
            self._session = self._background = self._main = None

    def declare(self, targets: Iterable[Target[..., Any]], timeout: float | None = None) -> None:
        """Add or replace targets (matched by module and name), e.g. after a cell is re-run; a
        running worker tells the server at once (registering workflows if ``register``). With
        ``timeout``, wait until the server confirms (``TimeoutError`` after that many seconds)."""
        targets = list(targets)
        keys = {(t.module, t.name) for t in targets}
        self._targets = [t for t in self._targets if (t.module, t.name) not in keys] + targets
        if self._session is None:
            return
        request = self._session.channel.declare(targets, confirm=timeout is not None)
        if request is not None and not request.wait_finished(timeout):
            raise TimeoutError(f"the server did not confirm the declaration within {timeout} s")

    @property
    def targets(self) -> list[Target[..., Any]]:
        return list(self._targets)

    def status(self) -> WorkerStatus | None:
        """Where the worker is connected, or why it is not (``None`` before :meth:`start`)."""
        session = self._session
        return session.board.current if session is not None else None

    def wait_connected(self, timeout: float | None = None) -> None:
        """Block until the server welcomed the worker. Raises the server's refusal (e.g.
        ``cf.Unauthorized`` for a wrong token, ``cf.Forbidden`` for a submit token,
        ``coflux.errors.ConfigurationError`` for a URL that is not Coflux's), after which the worker makes no
        more attempts; ``TimeoutError`` after ``timeout``, saying why it is not connected."""
        session = self._session
        if session is None:
            raise CofluxError("the worker is not started")
        status = session.board.wait(lambda s: s.state in ("connected", "refused"), timeout)
        if status.state == "connected":
            return
        if status.refusal is not None:
            raise status.refusal
        why = f": {status.reason}" if status.state == "waiting" else ""
        raise TimeoutError(f"not connected to {redact_url(status.url)} within {timeout} s{why}")

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "connected" if self.connected else ("started" if self._session else "stopped")
        return f"<Worker {self.settings.project}/{self.settings.workspace} {state}>"
