"""The worker protocol, version 1: JSON text frames over the ``coflux/ws/worker`` websocket.

Every message is an object with a ``type``; a frame holds one message, or a JSON array of messages
that a peer wrote in the same turn of its event loop (so a burst costs one write, not many).
No I/O here: only the message shapes, and the decoders, which check a frame's shape and raise
:class:`~coflux.errors.ProtocolError` on anything malformed.

Handshake: the worker sends ``hello``; the server answers ``welcome`` (or ``error`` and closes).

Worker -> server
    hello       protocol, workspace, session_id (to resume), concurrency, provides, targets,
                register (list workflows in the workspace), running (execution ids it still holds),
                kernel_id (optional: the Jupyter kernel the worker is, for a notebook kernel; a
                Jupyter kernel id, at most ``KERNEL_ID_MAX`` letters, digits and dashes)
    declare     targets, register, request_id (optional: then -> ``reply`` once the server holds
                them, so that a run started right after finds the workflow); a notebook cell re-run
                re-declares
    submit      request_id, parent_execution_id, call_index, module, target, target_type,
                arguments, options, await, cached_from (optional: a re-send pinned to the cache hit
                an early ``resolved`` answered with), answered (optional: the worker answered the
                call itself from a lease, pinned with ``cached_from``; only ``recorded`` follows),
                execution_id and outcome (optional: a re-send of a call whose child this worker
                ran and whose value it gave the caller; the server finishes or makes the child
                with exactly that outcome, never running it again)
                -> ``submitted`` (the child is durable); with ``await`` instead only ``resolved``
                (carrying the execution id) once the child is final
    wait        request_id, execution_id, from_execution_id -> ``resolved`` when it is final
    unwait      request_id: the caller stopped waiting (a ``poll`` or ``result`` that timed out), so
                its execution holds its slot again
    complete    seq, execution_id, outcome -> ``ack`` once durable (the worker buffers it until then);
                answered (optional: {caller, request_id} when this worker gave a succeeded
                child's value to that awaited call of its caller already: the server then sends
                no ``resolved`` for it, the ``ack`` proves both; should the server have ended the
                child otherwise meanwhile, it cancels that caller)
    started     execution_id
    cancel      request_id, execution_id, from_execution_id (optional: the execution whose code
                asked, named in the reason recorded) -> ``reply``
    log         execution_id, entries [{timestamp, level, message}]
    heartbeat   running [execution ids]

Server -> worker
    welcome     protocol, session_id, heartbeat_interval
    execute     execution_id, step_id, run_id, module, target, arguments, workspace, attempt;
                parent_execution_id and call_index for a child (the call it answers)
    abort       execution_id
    ack         seqs
    submitted   request_id, execution_id, step_id
    resolved    request_id, execution_id, outcome; for a cache hit answered ahead of the commit
                that records its step, also ``ahead`` (the commit batch's number) and ``cached_from``:
                the worker keeps the submit until a message sent after that batch's commit arrives,
                and re-sends it with ``cached_from`` if the connection drops first; and, when
                nothing but the cache decides such a call, ``lease`` {key (the cache key), ttl
                (seconds the hit stays within its max age, or null)}: until ``uncache`` names
                that key, the worker may answer identical calls (same run, target, options and
                arguments) with the same result itself, and sends them ``answered``
    recorded    request_ids: those ``answered`` submits are durable
    uncache     keys (cache keys) or all: stop answering those hits from leases; sent ahead of
                the commit that changes what they return (a new result, one in flight, a lineage
                or a declaration changed)
    outcome     parent_execution_id, step_id, outcome: a child of an execution the worker holds is
                final and nobody waits on it yet; the worker keeps it so that a later ``result()``
                needs no round trip (a fan-out's gather)
    reply       request_id
    error       code, message, request_id (optional); fatal ones close the connection

An ``outcome`` is ``{"state": "succeeded", "value": V}``, ``{"state": "failed", "error": {type, message,
traceback}}`` or ``{"state": "cancelled" | "timed_out" | "abandoned"}``. A cancelled outcome may carry an
``error`` too, saying why (``{"type": "coflux.ExecutionCancelled", "message": "cancelled by the user"}``);
a worker sends one for an execution whose code let out the cancellation of an execution it waited on.
A value ``V`` is the tagged JSON of :mod:`coflux.serialization`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from coflux.errors import ProtocolError

PROTOCOL_VERSION: Final = 1
MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
MAX_FRAME_MESSAGES: Final = 10_000
SMALL_FRAME_BYTES: Final = 256 * 1024
"""A frame up to this size is parsed in one go (a few milliseconds at most); a larger one message
by message, so that its handling can be spread over turns of the loop."""
"""Messages in one frame, at most: a peer splits larger batches (:func:`frames`). The server refuses
a frame beyond it after parsing no more than that many, however large the frame is."""
MAX_JSON_DEPTH: Final = 128
"""Deepest nesting of arrays and objects accepted in a frame or a request body: values nest far
less in practice, and deeper ones would reach the interpreter's recursion limit further on."""

Message = dict[str, Any]

_STR = str
_INT = int
_LIST = list
_DICT = dict

# Required fields and their types for each message type a peer may send.
WORKER_MESSAGES: Final[dict[str, dict[str, type | tuple[type, ...]]]] = {
    "hello": {"protocol": _INT, "workspace": _STR, "concurrency": _INT, "targets": _LIST},
    "declare": {"targets": _LIST},
    "submit": {
        "request_id": _INT,
        "parent_execution_id": _STR,
        "module": _STR,
        "target": _STR,
        "target_type": _STR,
        "arguments": _LIST,
    },
    "wait": {"request_id": _INT, "execution_id": _STR, "from_execution_id": _STR},
    "unwait": {"request_id": _INT},
    "complete": {"seq": _INT, "execution_id": _STR, "outcome": _DICT},
    "started": {"execution_id": _STR},
    "cancel": {"request_id": _INT, "execution_id": _STR},
    "log": {"execution_id": _STR, "entries": _LIST},
    "heartbeat": {"running": _LIST},
}

KERNEL_ID_MAX: Final = 64
_KERNEL_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")

SERVER_MESSAGES: Final[dict[str, dict[str, type | tuple[type, ...]]]] = {
    "welcome": {"protocol": _INT, "session_id": _STR},
    "execute": {
        "execution_id": _STR,
        "module": _STR,
        "target": _STR,
        "arguments": _LIST,
    },
    "abort": {"execution_id": _STR},
    "ack": {"seqs": _LIST},
    "submitted": {"request_id": _INT, "execution_id": _STR},
    "resolved": {"request_id": _INT, "execution_id": _STR, "outcome": _DICT},
    "outcome": {"parent_execution_id": _STR, "step_id": _STR, "outcome": _DICT},
    "reply": {"request_id": _INT},
    "recorded": {"request_ids": _LIST},
    "uncache": {},
    "error": {"code": _STR, "message": _STR},
}

OUTCOME_STATES: Final = frozenset({"succeeded", "failed", "cancelled", "timed_out", "abandoned"})


class Call(NamedTuple):
    """What every ``submit`` carries: a call of ``module:target`` by the execution
    ``parent_execution_id``. ``call_index`` and ``options`` are checked by whoever uses them."""

    request_id: int
    parent_execution_id: str
    call_index: int | None
    module: str
    target: str
    target_type: str
    arguments: list[Any]
    options: Any


@dataclass(frozen=True, slots=True)
class PlainSubmit:
    """A call whose caller wants a handle: ``submitted`` once its child step is durable."""

    call: Call


@dataclass(frozen=True, slots=True)
class AwaitedSubmit:
    """A call whose caller wants the value: ``resolved`` once its child is final, or at once (with
    ``ahead``) when a durable cached result settles it. ``pinned`` (``cached_from`` of a re-send):
    the cached result an earlier ``resolved`` answered it with, reused again."""

    call: Call
    pinned: Any = None


@dataclass(frozen=True, slots=True)
class AnsweredSubmit:
    """A call the worker answered itself from a lease, with the cached result ``cached_from``:
    only ``recorded`` follows, once its step is durable."""

    call: Call
    cached_from: Any


@dataclass(frozen=True, slots=True)
class CarriedSubmit:
    """A re-sent awaited call whose child this worker ran (``execution_id``) and whose succeeded
    ``outcome`` it gave the caller already: the child takes exactly that outcome."""

    call: Call
    execution_id: str
    outcome: dict[str, Any]


Submit = PlainSubmit | AwaitedSubmit | AnsweredSubmit | CarriedSubmit
"""A ``submit``, by what it asks for: one of its four variants."""


def encode(message: Message) -> str:
    return json.dumps(message, separators=(",", ":"))


def _check(message: Any, schema: dict[str, dict[str, type | tuple[type, ...]]]) -> Message:
    if not isinstance(message, dict):
        raise ProtocolError("malformed", "a frame must be a JSON object")
    kind = message.get("type")
    fields = schema.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise ProtocolError("unknown_message", f"unknown message type {kind!r}")
    for name, expected in fields.items():
        value = message.get(name)
        if not isinstance(value, expected) or (expected is _INT and isinstance(value, bool)):
            raise ProtocolError("malformed", f"{kind}: field {name!r} is missing or of the wrong type")
    if kind == "complete":
        check_outcome(message["outcome"])
    elif kind == "hello":
        check_kernel_id(message.get("kernel_id"))
    return message


def check_kernel_id(kernel_id: Any) -> None:
    """A ``hello``'s optional ``kernel_id``: absent (null), or a Jupyter kernel id (a UUID, or
    another server's own id of letters, digits and dashes) of at most ``KERNEL_ID_MAX`` characters."""
    if kernel_id is None:
        return
    if (
        not isinstance(kernel_id, str)
        or len(kernel_id) > KERNEL_ID_MAX
        or not _KERNEL_ID.fullmatch(kernel_id)
    ):
        raise ProtocolError(
            "malformed",
            f"hello: kernel_id must be a string of at most {KERNEL_ID_MAX} letters, digits and dashes",
        )


def check_outcome(outcome: dict[str, Any]) -> None:
    state = outcome.get("state")
    if state not in OUTCOME_STATES:
        raise ProtocolError("malformed", f"outcome state {state!r} is not one of {sorted(OUTCOME_STATES)}")
    if state == "succeeded" and "value" not in outcome:
        raise ProtocolError("malformed", "a succeeded outcome needs a value")
    if state == "failed" and not isinstance(outcome.get("error"), dict):
        raise ProtocolError("malformed", "a failed outcome needs an error object")


_STRINGS: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS: Final = re.compile(r"[^\[\]{}]+")
_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (numbers must be finite)")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range (numbers must be finite)")
    return number


def depth(text: str) -> int:
    """How deeply arrays and objects nest in the JSON ``text`` (computed without parsing it)."""
    structure = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    return max(itertools.accumulate(map(_STEP.__getitem__, structure)), default=0)


def loads(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict JSON: ``NaN``, ``Infinity`` and numbers that overflow (``1e999``) are refused (others
    could not read them back), and so is nesting deeper than ``max_depth``. Raises ``ValueError``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    # Nesting can't exceed the number of openers: most texts need no closer look.
    if text.count("[") + text.count("{") > max_depth and depth(text) > max_depth:
        raise ValueError(f"nested more than {max_depth} levels deep")
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite)


def _parse(frame: str | bytes) -> Any:
    if isinstance(frame, bytes):
        raise ProtocolError("malformed", "binary frames are not part of the protocol")
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        return loads(frame)
    except ValueError as err:
        raise ProtocolError("malformed", f"frame is not JSON: {err}") from err


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite)


def _skip_space(text: str, position: int) -> int:
    """The first position at or after ``position`` that is not JSON whitespace."""
    while position < len(text) and text[position] in " \t\n\r":
        position += 1
    return position


def _too_deep() -> ProtocolError:
    return ProtocolError("malformed", f"frame is not JSON: nested more than {MAX_JSON_DEPTH} levels deep")


class FrameReader:
    """The messages of one frame, parsed and checked a few at a time (:meth:`read`), so that a
    large frame can be taken in slices with other work in between. A frame is one message, or an
    array of at most ``limit`` messages: beyond that it is refused once ``limit`` are parsed,
    whatever its size. The JSON is as strict as :func:`loads` (each message of an array nests one
    level less than the frame may)."""

    def __init__(
        self,
        frame: str | bytes,
        schema: dict[str, dict[str, type | tuple[type, ...]]] = WORKER_MESSAGES,
        limit: int | None = MAX_FRAME_MESSAGES,
    ) -> None:
        if isinstance(frame, bytes):
            raise ProtocolError("malformed", "binary frames are not part of the protocol")
        if len(frame) > MAX_FRAME_BYTES:
            raise ProtocolError("too_large", f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
        self._frame = frame
        self._schema = schema
        self._limit = limit
        self._count = 0
        self.done = False
        self._parsed: list[Any] | None = None
        """A small frame's messages, parsed at once (still checked a few at a time)."""
        start = _skip_space(frame, 0)
        self._position: int | None = None
        """Where the array's next message starts; None for a frame of one message (not an array)."""
        if len(frame) <= SMALL_FRAME_BYTES:  # the common case: one parse is cheaper than many
            parsed = _parse(frame)
            self._parsed = parsed if isinstance(parsed, list) else [parsed]
            if limit is not None and len(self._parsed) > limit:
                raise ProtocolError("too_large", f"a frame holds at most {limit} messages")
        elif frame.startswith("[", start):
            self._position = _skip_space(frame, start + 1)
            if frame.startswith("]", self._position):
                self._finish(self._position + 1)

    def read(self, count: int) -> list[Message]:
        """Up to ``count`` more messages; fewer only when the frame ends (then :attr:`done`).
        Raises ``ProtocolError``: ``malformed``, ``unknown_message`` or ``too_large``."""
        if self.done:
            return []
        if self._parsed is not None:
            taken, self._parsed = self._parsed[:count], self._parsed[count:]
            self.done = not self._parsed
            return [_check(message, self._schema) for message in taken]
        if self._position is None:
            self.done = True
            return [_check(_parse(self._frame), self._schema)]
        messages: list[Message] = []
        while len(messages) < count and not self.done:
            messages.append(_check(self._next(), self._schema))
        return messages

    def read_all(self) -> list[Message]:
        messages: list[Message] = []
        while not self.done:
            messages += self.read(1024)
        return messages

    def _next(self) -> Any:
        frame, start = self._frame, self._position
        assert start is not None
        self._count += 1
        if self._limit is not None and self._count > self._limit:
            raise ProtocolError("too_large", f"a frame holds at most {self._limit} messages")
        try:
            message, end = _DECODER.raw_decode(frame, start)
        except RecursionError as err:
            raise _too_deep() from err
        except ValueError as err:
            raise ProtocolError("malformed", f"frame is not JSON: {err}") from err
        inner = MAX_JSON_DEPTH - 1  # the array is a level of its own
        brackets = frame.count("[", start, end) + frame.count("{", start, end)
        if brackets > inner and depth(frame[start:end]) > inner:
            raise _too_deep()
        after = _skip_space(frame, end)
        if frame.startswith(",", after):
            self._position = _skip_space(frame, after + 1)
        elif frame.startswith("]", after):
            self._finish(after + 1)
        else:
            raise ProtocolError("malformed", f"frame is not JSON: expected ',' or ']' at {after}")
        return message

    def _finish(self, position: int) -> None:
        if _skip_space(self._frame, position) != len(self._frame):
            raise ProtocolError("malformed", "frame is not JSON: extra data after the array")
        self.done = True


def frames(encoded: list[str]) -> list[str]:
    """Frames for already-encoded messages, in order: as few as the limits allow (at most
    ``MAX_FRAME_MESSAGES`` messages and ``MAX_FRAME_BYTES`` each; the text is ASCII, so characters
    are bytes). A message over the byte limit still travels, alone (the peer refuses it)."""
    if len(encoded) <= MAX_FRAME_MESSAGES and sum(map(len, encoded)) + len(encoded) + 1 <= MAX_FRAME_BYTES:
        return [encode_batch(encoded)] if encoded else []
    out: list[str] = []
    group: list[str] = []
    size = 1  # the array's brackets, and a comma or bracket per message
    for text in encoded:
        if group and (len(group) == MAX_FRAME_MESSAGES or size + len(text) + 1 > MAX_FRAME_BYTES):
            out.append(encode_batch(group))
            group, size = [], 1
        group.append(text)
        size += len(text) + 1
    out.append(encode_batch(group))
    return out


def encode_batch(encoded: list[str]) -> str:
    """One frame for several already-encoded messages (a JSON array), or the one message itself."""
    return encoded[0] if len(encoded) == 1 else "[" + ",".join(encoded) + "]"


def decode_batch_from_worker(frame: str | bytes) -> list[Message]:
    """The messages of a frame a worker sent (one, or an array of at most ``MAX_FRAME_MESSAGES``);
    raises ``ProtocolError``."""
    return FrameReader(frame).read_all()


def decode_batch_from_server(frame: str | bytes) -> list[Message]:
    """The messages of a frame the server sent (one, or an array); raises ``ProtocolError``."""
    return FrameReader(frame, SERVER_MESSAGES, limit=None).read_all()


def decode_from_worker(frame: str | bytes) -> Message:
    """Parse and check a frame a worker sent; raises ``ProtocolError``."""
    return _check(_parse(frame), WORKER_MESSAGES)


def decode_from_server(frame: str | bytes) -> Message:
    """Parse and check a frame the server sent; raises ``ProtocolError``."""
    return _check(_parse(frame), SERVER_MESSAGES)
