"""The server side of a ``submit``: the child step a call makes (or finds, when a worker re-sends it
after a reconnect), and the calls answered before their step commits: cache hits answered ahead,
calls a worker answered from a cache lease (``answered``), and calls whose child ran on the
caller's worker and were answered there (a re-send carrying ``outcome``).

A submit is read once (:func:`parse`) into one of the four variants of
:data:`coflux.protocol.Submit`, each with a handler of its own; "Submit, variant by variant" in
docs/architecture.md draws what each sends, and when.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from coflux.errors import BadRequest
from coflux.models import JSON, ExecutionId, ExecutionState, StepOptions, TargetType, new_run_id, step_id
from coflux.orchestrator import checks, keys
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.history import ChildStep
from coflux.orchestrator.reruns import reused_step
from coflux.orchestrator.state import Execution, Outcome, Reuse, Session, cancellation
from coflux.protocol import AnsweredSubmit, AwaitedSubmit, Call, CarriedSubmit, PlainSubmit, Submit

if TYPE_CHECKING:
    from coflux.orchestrator.workspaces import Workspaces

log = logging.getLogger(__name__)

Wait = Callable[[Session, Execution, str, int, str], None]
"""(session, caller, step, request id, execution id): answer the call with ``resolved`` when final."""


def parse(message: dict[str, Any]) -> Submit:
    """The variant a ``submit`` is (its fields' types were checked with the frame); raises
    ``BadRequest`` or ``ProtocolError`` for a combination that means nothing."""
    call = Call(
        message["request_id"],
        message["parent_execution_id"],
        checks.call_index(message.get("call_index")),
        message["module"],
        message["target"],
        message["target_type"],
        message["arguments"],
        message.get("options"),
    )
    awaits = bool(message.get("await"))
    if message.get("answered"):
        if call.call_index is None or not awaits or message.get("cached_from") is None:
            raise BadRequest("an answered submit needs call_index, await and cached_from")
        return AnsweredSubmit(call, message["cached_from"])
    carried = message.get("outcome")
    if carried is not None:
        if call.call_index is None or not awaits or not isinstance(carried, dict):
            raise BadRequest("a submit with an outcome needs call_index, await and an outcome object")
        if not isinstance(message.get("execution_id"), str):
            raise BadRequest("a submit with an outcome needs the execution_id that produced it")
        if carried.get("state") != ExecutionState.SUCCEEDED.value or "value" not in carried:
            raise BadRequest("a submit can carry only a succeeded outcome")
        return CarriedSubmit(call, message["execution_id"], checks.outcome(carried))
    if awaits:
        return AwaitedSubmit(call, message.get("cached_from"))
    return PlainSubmit(call)


class NewStep(NamedTuple):
    """A call's new child step, checked, with the keys that decide its memo, cache and defer."""

    module: str
    target: str
    kind: TargetType
    options: StepOptions
    options_json: str
    arguments: list[JSON]
    parameters: list[str] | None
    memo: str | None
    cache: str | None
    waits_on: list[str]


class Calls:
    def __init__(self, engine: Engine, workspaces: Workspaces, wait: Wait) -> None:
        self.engine = engine
        self.outbox = engine.outbox
        self.workspaces = workspaces
        self.wait = wait

    def submit(self, session: Session, parent: Execution, submit: Submit) -> None:
        """A ``submit`` of ``parent`` (running on ``session``)."""
        if isinstance(submit, PlainSubmit):
            self._plain(session, parent, submit.call)
        elif isinstance(submit, AwaitedSubmit):
            self._awaited(session, parent, submit)
        elif isinstance(submit, AnsweredSubmit):
            self._answered(session, parent, submit)
        else:
            self._carried(session, parent, submit)

    def _plain(self, session: Session, parent: Execution, call: Call) -> None:
        """A new child (or the one a re-send or a memo hit names): ``submitted`` once durable."""
        child = self._existing_child(parent, call.call_index) or self._child(parent, call, awaited=False)
        reply = {
            "type": "submitted",
            "request_id": call.request_id,
            "execution_id": _execution_of(child),
            "step_id": child.step_id,
        }
        self.outbox.send_after_commit(session, reply)

    def _awaited(self, session: Session, parent: Execution, submit: AwaitedSubmit) -> None:
        """``resolved`` once the child is final; at once, ahead of the commit, if a durable cached
        result settles it (:meth:`_answer_ahead`)."""
        call = submit.call
        child = self._existing_child(parent, call.call_index)
        if child is None:
            found = self._plan(parent, call)
            if isinstance(found, NewStep):
                reuse = self._durable_reuse(parent, found, submit.pinned)
                if reuse is not None:
                    run = parent.step.run
                    lease = found.cache if found.memo is None and submit.pinned is None else None
                    ahead = f"{step_id(run.run_id, run.next_number)}:1"
                    self._answer_ahead(session, call.request_id, ahead, reuse, lease)
                    self._make(parent, found, call.call_index, awaited=True, reuse=reuse)
                    return
                found = self._make(parent, found, call.call_index, awaited=True)
            child = found
        # The caller only wants the value: ``resolved`` will carry the execution id.
        self.wait(session, parent, child.step_id, call.request_id, _execution_of(child))

    def _answered(self, session: Session, parent: Execution, submit: AnsweredSubmit) -> None:
        """A call the worker answered itself from a lease (pinned ``cached_from``): only its step is
        made, from exactly that result, and ``recorded`` says once it is durable (a re-send of one
        already made just gets that). Refused, with nothing made, if the pinned result isn't a
        cached result of this call."""
        call = submit.call
        if self._existing_child(parent, call.call_index) is None:
            found = self._plan(parent, call)
            if isinstance(found, NewStep):
                reuse = self._durable_reuse(parent, found, submit.cached_from)
                if reuse is None or reuse.execution_id != submit.cached_from:
                    raise BadRequest(
                        f"cached_from {submit.cached_from!r} is not a cached result of this call"
                    )
                self._make(parent, found, call.call_index, awaited=True, reuse=reuse)
        session.recorded.append(call.request_id)
        if len(session.recorded) == 1:  # one ``recorded`` per session and commit
            self.engine.writer.after_commit(lambda: self._send_recorded(session))

    def _send_recorded(self, session: Session) -> None:
        request_ids, session.recorded = session.recorded, []
        self.outbox.send(session, {"type": "recorded", "request_ids": request_ids})

    def _carried(self, session: Session, parent: Execution, submit: CarriedSubmit) -> None:
        """A re-sent call carrying the outcome its caller used: the child takes it (made with it,
        if the server lost the step), and ``resolved`` follows as for any awaited call."""
        call = submit.call
        child = self._existing_child(parent, call.call_index)
        if child is None:
            found = self._plan(parent, call)
            if isinstance(found, NewStep):
                found = self._make(parent, found, call.call_index, awaited=True, preset=submit.outcome)
            child = found
        elif not self._settle_carried(session, parent, child.step_id, submit):
            return
        self.wait(session, parent, child.step_id, call.request_id, _execution_of(child))

    def _settle_carried(
        self, session: Session, parent: Execution, step_key: str, submit: CarriedSubmit
    ) -> bool:
        """For a step that exists: the execution that produced the carried outcome is finished with
        it if still live (queued, or assigned here or elsewhere, as after a restart); if it already
        succeeded, this is a repeat. Otherwise the step holds some other outcome than the one the
        caller used: the caller is cancelled (returns False), as when a result it used crosses a
        cancel (see ``complete``)."""
        ran_id = submit.execution_id
        ran = self.engine.executions.get(ExecutionId(ran_id))
        if ran is not None and ran.step.step_id == step_key:
            elsewhere = ran.session if ran.session is not None and ran.session is not session else None
            self.engine.finish(ran, submit.outcome)
            if elsewhere is not None:  # it runs there again (dispatched after a restart): stop it
                self.engine.abort_on(elsewhere, ran.execution_id)
            return True
        if self.engine.state_of(ran_id) == ExecutionState.SUCCEEDED.value:
            return True
        log.info("%s used a result of %s that its step doesn't hold: cancelled", parent.execution_id, ran_id)
        reason = f"cancelled: it used a result of {ran_id} that its step doesn't hold"
        self.engine.finish(parent, cancellation(reason))
        return False

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
        reply: dict[str, Any] = {
            "type": "resolved",
            "request_id": request_id,
            "execution_id": execution_id,
            "outcome": {"state": ExecutionState.SUCCEEDED.value, "value": reuse.value},
            "ahead": self.engine.writer.number,
            "cached_from": reuse.execution_id,
        }
        if lease is not None:
            ttl = None if reuse.until is None else reuse.until - self.engine.clock.now()
            reply["lease"] = {"key": lease, "ttl": ttl}
            self.engine.cache.grant_lease(lease, session.session_id)
        self.outbox.send(session, reply)
        if session.flush is not None:
            session.flush()  # now, rather than with the commit: the step is made meanwhile
        self.engine.writer.schedule()

    def _child(self, parent: Execution, call: Call, *, awaited: bool) -> ChildStep:
        """The step a call names (the re-run's fixed step, or a memo hit), else a new one."""
        found = self._plan(parent, call)
        return (
            self._make(parent, found, call.call_index, awaited=awaited)
            if isinstance(found, NewStep)
            else found
        )

    def _plan(self, parent: Execution, call: Call) -> ChildStep | NewStep:
        """The call checked: the step it reuses (the one whose re-run made this re-run of its
        parent, or the run's memoised one with the same key), or the new step it makes."""
        module = checks.name(call.module, "module")
        target = checks.name(call.target, "target")
        kind = _target_type(call.target_type)
        options, options_json = checks.options_and_text(call.options)
        arguments = [checks.value(a, "an argument") for a in call.arguments]
        fixed = reused_step(parent, module, target, arguments)
        if fixed is not None:
            return ChildStep(fixed, self.engine.latest_attempt(fixed))
        run = parent.step.run
        parameters = self.workspaces.parameters(parent.workspace_id, module, target)
        memoised = self.engine.memo_of(run)  # (also loads the run's memo default after a restart)
        memo = keys.memo_key(module, target, options, arguments, parameters, run.memo_default)
        if memo is not None and memo in memoised:
            hit = memoised[memo]
            return ChildStep(hit, self.engine.latest_attempt(hit))
        cache = keys.cache_key(module, target, options, arguments, parameters)
        waits_on = keys.waited_references(options, arguments, parameters)
        return NewStep(
            module, target, kind, options, options_json, arguments, parameters, memo, cache, waits_on
        )

    def _durable_reuse(self, parent: Execution, new: NewStep, pinned: Any) -> Reuse | None:
        """The committed cached result that settles an awaited call now, if any (see
        :meth:`~coflux.orchestrator.cache.CacheIndex.durable_reuse`)."""
        if new.cache is None or new.kind is not TargetType.TASK or new.options.delay or new.waits_on:
            return None  # only a task that nothing holds back (no delay, no wait) is settled so
        pin = checks.execution_id(pinned, "cached_from") if pinned is not None else None
        return self.engine.cache.durable_reuse(new.cache, parent.workspace_id, new.options, pin)

    def _make(
        self,
        parent: Execution,
        new: NewStep,
        call_index: int | None,
        *,
        awaited: bool,
        reuse: Reuse | None = None,
        preset: Outcome | None = None,
    ) -> ChildStep:
        """Make the step and its first execution. A workflow called from an execution starts a run
        of its own, spawned by (linked to) the caller: its root step is the caller's child, so
        waiting and cancelling cascade."""
        run, memo = parent.step.run, new.memo
        if new.kind is TargetType.WORKFLOW:
            run = self.engine.new_run(new_run_id(), parent.workspace_id, parent.execution_id)
            run.memo_default, memo = new.options.memo, None
        target = (new.module, new.target, new.kind)
        cache_and_memo = (new.cache, memo)
        step = self.engine.new_step(
            run, target, new.arguments, new.options, parent, call_index, cache_and_memo, new.options_json
        )
        step.waits_on = new.waits_on
        step.defer_key = keys.defer_key(new.module, new.target, new.options, new.arguments, new.parameters)
        step.awaited, step.reuse, step.preset = awaited, reuse, preset
        self.engine.new_execution(step, parent.workspace_id, new.options.delay)
        return ChildStep(step.step_id, step.attempts)

    def _existing_child(self, parent: Execution, call_index: int | None) -> ChildStep | None:
        """A submit re-sent after a reconnect names a child that already exists: reuse it."""
        if call_index is None:
            return None
        step = parent.calls.get(call_index)
        if step is not None:
            return ChildStep(step.step_id, step.attempts)
        if parent.restored:
            return self.engine.history.child(parent.execution_id, call_index)
        return None


def _execution_of(child: ChildStep) -> str:
    return f"{child.step_id}:{max(child.attempt, 1)}"


def _target_type(value: Any) -> TargetType:
    try:
        return TargetType(value)
    except ValueError as err:
        raise checks.malformed(f"target_type must be 'task' or 'workflow', not {value!r}") from err
