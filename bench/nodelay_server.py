"""EXPERIMENT, not the shipped code: ``coflux server`` with TCP_NODELAY on the worker websockets.

Used by ``bench/run.py --experiment server-nodelay`` to test one hypothesis from the profile: the
server never calls ``set_nodelay(True)`` on ``jupyter_ext.websocket.WorkerSocket`` (the worker does on
its side, ``coflux/worker/transport.py``), so back-to-back small frames from the server (``submitted``
then ``execute``, ``ack`` then ``resolved``) wait on Nagle's algorithm for the peer's delayed ACK,
about 40 ms on Linux. The patch is applied in this process only; no file outside bench/ changes.

    python bench/nodelay_server.py server --port N ...   (the same arguments as ``coflux server``)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coflux.cli import main
from jupyter_ext.websocket import WorkerSocket

_original_open = WorkerSocket.open


def _open_without_nagle(self: WorkerSocket, *args: Any, **kwargs: Any) -> Any:
    self.set_nodelay(True)
    return _original_open(self, *args, **kwargs)


WorkerSocket.open = _open_without_nagle  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
