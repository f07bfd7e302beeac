"""What every ``coflux/`` route answers when the extension loaded but Coflux could not start."""

from __future__ import annotations

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler

from jupyter_ext.errors import error_body

_HIDDEN = "Coflux is unavailable on this server: its log says why"


class UnavailableHandler(APIHandler):
    """503 with the reason (which may name the server's files: only for those Jupyter
    authenticated; anyone else is told to read the log). A websocket upgrade gets the same answer."""

    reason: str

    def initialize(self, reason: str | None) -> None:
        self.reason = reason or "unknown"

    def check_xsrf_cookie(self) -> None:
        return None  # nothing here changes anything

    def _unavailable(self, *args: str) -> None:
        message = f"Coflux is unavailable: {self.reason}" if self.current_user is not None else _HIDDEN
        self.set_status(503)
        self.set_header("Content-Type", "application/json")
        self.finish(error_body("unavailable", message))

    get = post = put = delete = patch = allow_unauthenticated(_unavailable)
