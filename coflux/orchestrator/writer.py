"""Group commit: every event of one loop tick goes into one transaction, and nothing that depends on
an event (an acknowledgement, a reply, a resolution) leaves the process before that transaction
commits. Three kinds leave before it, so that workers go on while the batch is written:

- ``execute``, a dispatch (written with ``before_commit``; see
  :meth:`coflux.orchestrator.assignment.Assignments.assign`);
- ``resolved`` with ``ahead`` (the number of the batch that records the step), the answer to an
  awaited submit that a durable cached result settles (see
  :meth:`coflux.orchestrator.calls.Calls._answer_ahead`);
- ``uncache``, which revokes leases before the change that ends them commits (see
  :meth:`coflux.orchestrator.cache.CacheIndex.revoke_leases`).

"Submit, variant by variant" in docs/architecture.md draws each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from coflux.storage import Batch, SqlStore

log = logging.getLogger(__name__)

Effect = Callable[[], None]


class Writer:
    def __init__(
        self,
        store: SqlStore,
        before_commit: Callable[[], None],
        on_failure: Callable[[Exception], None],
        after_effects: Callable[[], None] = lambda: None,
    ) -> None:
        self._after_effects = after_effects
        self.store = store
        self.batch = Batch()
        self._effects: list[Effect] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._scheduled = False
        self._before_commit = before_commit
        self._on_failure = on_failure
        self.number = 1
        """The number of the batch being built: every flush closes one (an empty one too). A later
        number proves every earlier batch committed (a failed commit reloads the service and closes
        every worker connection first)."""

    def after_commit(self, effect: Effect) -> None:
        """Run ``effect`` once everything written so far is durable."""
        self._effects.append(effect)
        self.schedule()

    def durable(self) -> asyncio.Future[None]:
        """A future that completes when everything written so far has committed (or fails with it)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self.schedule()
        return future

    def schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_flush)

    @property
    def scheduled(self) -> bool:
        """A flush is due at the end of the loop's turn (something was written, or is awaited)."""
        return self._scheduled

    def flush_if_scheduled(self) -> None:
        """Flush now what a scheduled flush would (that one then finds nothing to do)."""
        if self._scheduled:
            self.flush()

    def _scheduled_flush(self) -> None:
        if self._scheduled:
            self.flush()

    def flush(self) -> None:
        self._scheduled = False
        self._before_commit()
        batch, self.batch = self.batch, Batch()
        self.number += 1
        effects, self._effects = self._effects, []
        waiting, self._waiting = self._waiting, []
        if batch:
            try:
                self.store.apply(batch)
            except Exception as err:
                log.exception("commit failed; the project reloads from storage")
                for future in waiting:
                    if not future.done():
                        future.set_exception(err)
                self._on_failure(err)
                return
        for future in waiting:
            if not future.done():
                future.set_result(None)
        for effect in effects:
            try:
                effect()
            except Exception:
                log.exception("an after-commit effect failed")
        self._after_effects()
