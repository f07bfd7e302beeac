"""The server side of a ``submit``: the child step a call makes (or finds, when a worker re-sends it
after a reconnect), and the calls answered before their step commits: cache hits answered ahead,
calls a worker answered from a cache lease (``answered``), and calls whose child ran on the
caller's worker and were answered there (a re-send carrying ``outcome``). See the worker protocol
in docs/architecture.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coflux.errors import BadRequest
from coflux.models import ExecutionId, ExecutionState, TargetType, new_run_id, step_id
from coflux.orchestrator import checks, keys
from coflux.orchestrator.cache import Reuse
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.reruns import reused_step
from coflux.orchestrator.state import Execution, Outcome, Run, Session, cancellation

if TYPE_CHECKING:
    from coflux.orchestrator.workspaces import Workspaces

log = logging.getLogger(__name__)

Wait = Callable[[Session, Execution, str, int, str], None]
"""(session, caller, step, request id, execution id): answer the call with ``resolved`` when final."""


class Calls:
    def __init__(
        self,
        engine: Engine,
        workspaces: Workspaces,
        wait: Wait,
        find_child: Callable[[str, int], tuple[str, int] | None],
        memo_of: Callable[[Run], dict[str, str]],
        latest_attempt: Callable[[str], int],
    ) -> None:
        self.engine = engine
        self.workspaces = workspaces
        self.wait = wait
        self.find_child = find_child
        self.memo_of = memo_of
        self.latest_attempt = latest_attempt

    def submit(self, session: Session, parent: Execution, message: dict[str, Any]) -> None:
        """A ``submit`` of ``parent`` (running on ``session``): a new child step, the one a
        re-send names, a memo hit, or a cached answer ahead of the commit."""
        call_index = checks.call_index(message.get("call_index"))
        awaits = bool(message.get("await"))
        request_id = message["request_id"]
        if message.get("answered"):
            self._record_answered(session, parent, message, call_index)
            return
        carried = self._carried_outcome(message, call_index, awaits)
        existing = self._existing_child(parent, call_index)
        if existing is None:

            def ahead(execution_id: str, reuse: Reuse, lease: str | None) -> None:
                self._answer_ahead(session, request_id, execution_id, reuse, lease)

            step_key, attempts, answered = self._new_child(
                parent, message, call_index, ahead if awaits and carried is None else None, preset=carried
            )
            if answered:
                return
        else:
            step_key, attempts = existing
            if carried is not None and not self._settle_carried(session, parent, step_key, message, carried):
                return
        execution_id = f"{step_key}:{max(attempts, 1)}"
        if awaits:
            # The caller only wants the value: ``resolved`` will carry the execution id.
            self.wait(session, parent, step_key, request_id, execution_id)
            return
        reply = {
            "type": "submitted",
            "request_id": request_id,
            "execution_id": execution_id,
            "step_id": step_key,
        }
        self.engine.writer.after_commit(lambda: self.engine.send_to(session, reply))

    def _settle_carried(
        self, session: Session, parent: Execution, step_key: str, message: dict[str, Any], carried: Outcome
    ) -> bool:
        """A re-sent call carrying the outcome its caller used, for a step that exists: the
        execution that produced it is finished with it if still live (queued, or assigned here
        or elsewhere, as after a restart); if it already succeeded, this is a repeat. Otherwise
        the step holds some other outcome than the one the caller used: the caller is cancelled
        (returns False), as when a result it used crosses a cancel (see ``complete``)."""
        ran_id = message["execution_id"]
        ran = self.engine.executions.get(ExecutionId(ran_id))
        if ran is not None and ran.step.step_id == step_key:
            elsewhere = ran.session if ran.session is not None and ran.session is not session else None
            self.engine.finish(ran, carried)
            if elsewhere is not None:  # it runs there again (dispatched after a restart): stop it
                abort = {"type": "abort", "execution_id": ran_id}
                self.engine.writer.after_commit(lambda: self.engine.send_to(elsewhere, abort))
            return True
        if self.engine.state_of(ran_id) == ExecutionState.SUCCEEDED.value:
            return True
        log.info("%s used a result of %s that its step doesn't hold: cancelled", parent.execution_id, ran_id)
        reason = f"cancelled: it used a result of {ran_id} that its step doesn't hold"
        self.engine.finish(parent, cancellation(reason))
        return False

    @staticmethod
    def _carried_outcome(message: dict[str, Any], call_index: int | None, awaits: bool) -> Outcome | None:
        """A submit re-sent with the outcome this worker already gave its caller, having run the
        child itself (see ``answered`` in ``complete``): checked, else None."""
        carried = message.get("outcome")
        if carried is None:
            return None
        if call_index is None or not awaits or not isinstance(carried, dict):
            raise BadRequest("a submit with an outcome needs call_index, await and an outcome object")
        if not isinstance(message.get("execution_id"), str):
            raise BadRequest("a submit with an outcome needs the execution_id that produced it")
        if carried.get("state") != ExecutionState.SUCCEEDED.value or "value" not in carried:
            raise BadRequest("a submit can carry only a succeeded outcome")
        return checks.outcome(carried)

    def _record_answered(
        self, session: Session, parent: Execution, message: dict[str, Any], call_index: int | None
    ) -> None:
        """A call the worker answered itself from a lease (``answered``, pinned ``cached_from``):
        only its step is made, from exactly that result, and ``recorded`` says once it is durable
        (a re-send of one already made just gets that). Refused, with nothing made, if the pinned
        result isn't a cached result of this call."""
        if call_index is None or not message.get("await") or message.get("cached_from") is None:
            raise BadRequest("an answered submit needs call_index, await and cached_from")
        if self._existing_child(parent, call_index) is None:
            self._new_child(parent, message, call_index, lambda *_: None, answered=True)
        session.recorded.append(message["request_id"])
        if len(session.recorded) == 1:  # one ``recorded`` per session and commit
            self.engine.writer.after_commit(lambda: self._send_recorded(session))

    def _send_recorded(self, session: Session) -> None:
        request_ids, session.recorded = session.recorded, []
        self.engine.send_to(session, {"type": "recorded", "request_ids": request_ids})

    def _answer_ahead(
        self, session: Session, request_id: int, execution_id: str, reuse: Reuse, lease: str | None
    ) -> None:
        """An awaited call that a durable cached result settles: answered at once, before its step
        is even made, and sent ahead of the commit that records the step (``ahead`` names it), as
        a dispatch is. Should the server die before that commit, the worker, which keeps the
        submit until a later message proves the commit, re-sends it with ``cached_from`` after
        reconnecting: the step is made again from that same result, so the record matches the
        answer its caller already has.

        With ``lease`` (the call's cache key, when nothing else, such as memo, decides its answer)
        the worker may also answer identical calls of the same run itself, each then sent as an
        ``answered`` submit to be recorded, until ``uncache`` (see
        :meth:`~coflux.orchestrator.cache.CacheIndex.revoke_leases`) or the hit's max age."""
        source, value, until = reuse
        reply: dict[str, Any] = {
            "type": "resolved",
            "request_id": request_id,
            "execution_id": execution_id,
            "outcome": {"state": ExecutionState.SUCCEEDED.value, "value": value},
            "ahead": self.engine.writer.number,
            "cached_from": source,
        }
        if lease is not None:
            reply["lease"] = {"key": lease, "ttl": None if until is None else until - time.time()}
            self.engine.cache.grant_lease(lease, session.session_id)
        self.engine.send_to(session, reply)
        if session.flush is not None:
            session.flush()  # now, rather than with the commit: the step is made meanwhile
        self.engine.writer.schedule()

    def _new_child(
        self,
        parent: Execution,
        message: dict[str, Any],
        call_index: int | None,
        ahead: Callable[[str, Reuse, str | None], None] | None = None,
        answered: bool = False,
        preset: Outcome | None = None,
    ) -> tuple[str, int, bool]:
        """A new step for the submit, or the run's memoised one with the same key: its key, its
        (latest) attempt, and whether ``ahead`` (given for an awaited call) answered already.
        ``answered``: the worker answered it from a lease; refused unless its pin is honoured."""
        module = checks.name(message["module"], "module")
        target = checks.name(message["target"], "target")
        kind = _target_type(message["target_type"])
        options, options_json = checks.options_and_text(message.get("options"))
        arguments = [checks.value(a, "an argument") for a in message["arguments"]]
        fixed = reused_step(parent, module, target, arguments)
        if fixed is not None:  # the step whose re-run made this re-run of its parent: reused
            return fixed, self.latest_attempt(fixed), False
        run = parent.step.run
        parameters = self.workspaces.parameters(parent.workspace_id, module, target)
        memoised = self.memo_of(run)  # (also loads the run's memo default after a restart)
        memo = keys.memo_key(module, target, options, arguments, parameters, run.memo_default)
        if memo is not None and memo in memoised:
            hit = memoised[memo]
            return hit, self.latest_attempt(hit), False
        cache = keys.cache_key(module, target, options, arguments, parameters)
        waits_on = keys.waited_references(options, arguments, parameters)
        reuse = None
        # An awaited task that nothing holds back (no delay, no wait): a durable hit settles it.
        if (
            ahead is not None
            and cache is not None
            and kind is TargetType.TASK
            and not (options.delay or waits_on)
        ):
            pinned = message.get("cached_from")
            pinned = checks.execution_id(pinned, "cached_from") if pinned is not None else None
            reuse = self.engine.cache.durable_reuse(cache, parent.workspace_id, options, pinned)
            if reuse is not None and not (answered and reuse[0] != pinned):
                leasable = memo is None and pinned is None
                ahead(f"{step_id(run.run_id, run.next_number)}:1", reuse, cache if leasable else None)
            else:
                reuse = None
        if answered and reuse is None:
            raise BadRequest(
                f"cached_from {message.get('cached_from')!r} is not a cached result of this call"
            )
        if kind is TargetType.WORKFLOW:
            # A workflow called from an execution starts a run of its own, spawned by (linked to)
            # the caller: its root step is the caller's child, so waiting and cancelling cascade.
            run = self.engine.new_run(new_run_id(), parent.workspace_id, parent.execution_id)
            run.memo_default, memo = options.memo, None
        step = self.engine.new_step(
            run, (module, target, kind), arguments, options, parent, call_index, (cache, memo), options_json
        )
        step.waits_on = waits_on
        step.defer_key = keys.defer_key(module, target, options, arguments, parameters)
        step.awaited = ahead is not None or preset is not None
        step.reuse = reuse[:2] if reuse is not None else None
        step.preset = preset
        self.engine.new_execution(step, parent.workspace_id, options.delay)
        return step.step_id, step.attempts, reuse is not None

    def _existing_child(self, parent: Execution, call_index: int | None) -> tuple[str, int] | None:
        """A submit re-sent after a reconnect names a child that already exists: reuse it."""
        if call_index is None:
            return None
        step = parent.calls.get(call_index)
        if step is not None:
            return step.step_id, step.attempts
        if parent.restored:
            return self.find_child(parent.execution_id, call_index)
        return None


def _target_type(value: Any) -> TargetType:
    try:
        return TargetType(value)
    except ValueError as err:
        raise checks.malformed(f"target_type must be 'task' or 'workflow', not {value!r}") from err
