"""Where a server's Coflux API is, given the URL a user typed.

The API lives at ``{base_url}coflux`` of a Jupyter server (``http://127.0.0.1:8888/coflux``), but
what a JupyterLab user sees is the server's root or a page of it (``http://127.0.0.1:8888/lab``).
Coflux answers JSON, never an HTML page, and its errors are ``{"error": {"code", "message"}}``;
so an answer tells whether a URL is Coflux's (:attr:`Answer.foreign`). When it is not,
:func:`locate` looks for the API on the same origin: ``URL/coflux``, then ``/coflux`` under each
shorter path, asking each ``GET .../api/projects`` (any Coflux answer will do, a refusal included).
``cf.Client`` and the worker both use it; what they found, they say.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Final

from coflux.errors import NotCoflux
from coflux.tokens import redact_url

_logger = logging.getLogger("coflux")

PROBE_TIMEOUT: Final = 5.0
_JUPYTER_PAGES: Final = frozenset({"lab", "tree", "notebooks", "edit", "view", "doc", "api", "coflux"})
"""Path segments of Jupyter's pages (and APIs): the server's base URL ends before them."""
_located: dict[str, str] = {}
_announced: set[str] = set()
_located_lock = threading.Lock()


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, whatever its status: enough to tell whether Coflux gave it."""

    status: int
    content_type: str
    body: bytes

    @property
    def html(self) -> bool:
        kind = self.content_type.partition(";")[0].strip().lower()
        if kind:
            return kind in ("text/html", "application/xhtml+xml")
        return self.body.lstrip()[:16].lower().startswith((b"<!doctype html", b"<html"))

    def error(self) -> tuple[str, str] | None:
        """``(code, message)`` of Coflux's JSON error body, if it is one."""
        try:
            error = json.loads(self.body)["error"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(error, dict):
            return None
        code, message = error.get("code"), error.get("message")
        if not isinstance(code, str) or not isinstance(message, str):
            return None
        return code, message

    @property
    def foreign(self) -> bool:
        """Not the answer of Coflux's API: an HTML page, or a refusal (4xx) without Coflux's JSON
        error. A 5xx without it is a server (or a proxy) in trouble, not a wrong URL."""
        if self.status >= 500:
            return False
        if self.html:
            return True
        return self.status >= 400 and self.error() is None

    @property
    def from_coflux(self) -> bool:
        """The answer of Coflux's ``GET api/projects``: the list, or one of its errors (but not a
        404: that route exists wherever Coflux is, so a 404 means Coflux is not there)."""
        if self.html or self.status == 404:
            return False
        if self.error() is not None:
            return True
        try:
            return isinstance(json.loads(self.body).get("projects"), list)
        except (ValueError, AttributeError):
            return False

    def describe(self) -> str:
        """``HTTP 404 with an HTML page``: what came back, in a few words (never the page)."""
        kind = self.content_type.partition(";")[0].strip().lower()
        error = self.error()
        if self.html:
            what = "an HTML page"
        elif error is not None:
            what = f"Coflux's error {error[0]!r}"
        elif kind == "application/json" or (not kind and _is_json(self.body)):
            what = "JSON that is not Coflux's" if self.foreign else "JSON"
        elif not self.body.strip():
            what = "an empty body"
        else:
            what = kind or "a body of unknown type"
        return f"HTTP {self.status} with {what}"


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def exchange(request: urllib.request.Request, timeout: float) -> Answer:
    """Send ``request``; its answer whatever the status. Raises ``OSError`` (``URLError``
    included) when nothing answered."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            return Answer(response.status, response.headers.get("Content-Type", ""), body)
    except urllib.error.HTTPError as err:
        with err:
            content_type = err.headers.get("Content-Type", "") if err.headers else ""
            return Answer(err.code, content_type, err.read())


def candidates(url: str) -> list[str]:
    """Where else on ``url``'s origin the API may be, nearest first: ``url/coflux``, then
    ``/coflux`` under each shorter path (the query and fragment dropped)."""
    parts = urllib.parse.urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    segments = [s for s in parts.path.split("/") if s]
    given = _normalized(url)
    found: list[str] = []
    for length in range(len(segments), -1, -1):
        candidate = origin + "".join(f"/{s}" for s in segments[:length]) + "/coflux"
        if candidate != given and candidate not in found:
            found.append(candidate)
    return found


def suggested_url(url: str) -> str:
    """The URL to suggest for ``url`` when no API was found: its path up to the first segment of
    a Jupyter page (``lab``, ``tree``...), followed by ``/coflux``."""
    parts = urllib.parse.urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    kept: list[str] = []
    for segment in segments:
        if segment in _JUPYTER_PAGES:
            break
        kept.append(segment)
    return f"{parts.scheme}://{parts.netloc}" + "".join(f"/{s}" for s in kept) + "/coflux"


@dataclass(frozen=True)
class Location:
    """What :func:`locate` found: the API's URL (``None``: nowhere), and how ``url`` itself
    answered ``GET api/projects`` (``None``: nothing answered), to say why it is not Coflux's."""

    found: str | None
    answer: Answer | None


def locate(url: str, token: str | None, timeout: float = PROBE_TIMEOUT) -> Location:
    """Look for the Coflux API on ``url``'s origin (see the module's docstring). Remembered for the
    process, so another client given the same URL goes straight there (:func:`known`)."""
    own = _probe(_normalized(url), token, timeout)
    for candidate in candidates(url):
        answer = _probe(candidate, token, timeout)
        if answer is not None and answer.from_coflux:
            with _located_lock:
                _located[_normalized(url)] = candidate
            return Location(candidate, own)
    return Location(None, own)


def known(url: str) -> str:
    """Where :func:`locate` found the API for ``url`` in this process, else ``url``."""
    with _located_lock:
        return _located.get(_normalized(url), url)


def announce(given: str, found: str) -> None:
    """Say once per process that ``found`` is used for ``given`` (a warning on the ``coflux``
    logger: on stderr when logging is not configured, in the cell's output in a notebook)."""
    message = relocation_note(given, found)
    with _located_lock:
        if message in _announced:
            return
        _announced.add(message)
    _logger.warning("coflux: %s", message)


def relocation_note(given: str, found: str) -> str:
    return f"{redact_url(given)} is not Coflux's address; using {redact_url(found)}"


def not_coflux(url: str, answer: Answer | None) -> NotCoflux:
    """The error for a URL where no Coflux API was found: what it answered (never the page) and
    what to do: the URL to use, or, for a server error that isn't Coflux's (a proxy's page),
    whether Coflux runs behind it."""
    said = f"it answers {answer.describe()}" if answer is not None else "it does not answer as Coflux"
    if answer is not None and answer.status >= 500:
        return NotCoflux(f"{redact_url(url)} did not answer as Coflux ({said}): is Coflux running behind it?")
    return NotCoflux(
        f"{redact_url(url)} is not a Coflux server ({said}); use the server's Coflux URL, "
        f"e.g. {redact_url(suggested_url(url))}"
    )


def _probe(base: str, token: str | None, timeout: float) -> Answer | None:
    request = urllib.request.Request(f"{base}/api/projects", method="GET")
    request.add_header("Accept", "application/json")
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        return exchange(request, timeout)
    except (OSError, ValueError):
        return None


def _normalized(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
