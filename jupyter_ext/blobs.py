"""Blobs over HTTP, streamed both ways: never held whole in the server's memory.

``PUT blobs/{key}`` spools the body to a temporary file, hashing it as it arrives
(:class:`coflux.blobs.Upload`), and files it only if its SHA-256 is the key; ``GET`` sends it in
chunks, each flushed before the next is read; ``HEAD`` says whether it is there (and its size).
Every read and write of a file runs on the blob threads, never on the event loop."""

from __future__ import annotations

from tornado.iostream import StreamClosedError

from coflux.blobs import BlobStore, Upload, valid_key
from coflux.errors import BadRequest, NotFound, RequestError, StorageError
from jupyter_ext.handlers import CofluxHandler

CHUNK = 256 * 1024
"""Bytes read from the store and flushed to the client at a time."""


async def stream(handler: CofluxHandler, store: BlobStore, key: str, size: int, media_type: str) -> None:
    """Answer with the blob's ``size`` bytes, read from ``store`` a chunk at a time (headers set
    before are kept). Should the client go away, reading stops."""
    file = await handler.off_loop(store.open, key)
    try:
        handler.set_header("Content-Type", media_type)
        handler.set_header("Content-Length", str(size))
        while chunk := await handler.off_loop(file.read, CHUNK):
            handler.write(chunk)
            await handler.flush()
    except StreamClosedError:
        return
    finally:
        await handler.off_loop(file.close)
    handler.finish(set_content_type=media_type)


def sizes(store: BlobStore, keys: list[str]) -> dict[str, int | None]:
    """Each key's size in ``store`` (None: not there). Blocks: run it on a blob thread."""
    return {key: store.size(key) for key in keys}


class BlobHandler(CofluxHandler):
    auth_resource = "coflux:blobs"
    _upload: Upload | None = None
    _failure: RequestError | StorageError | None = None
    """Why the upload could not take a chunk (a full disk): the answer, once the body is in."""

    def max_body(self) -> int:
        limit: int = self.serverapp.max_body_size
        return limit

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self._finished or self.request.method != "PUT":
            return
        project, key = self.path_args
        try:
            if not valid_key(key):
                raise BadRequest(f"not a blob key (64 lowercase hex digits): {key[:80]!r}")
            self._upload = await self.off_loop(Upload, self.hub.blobs(project), key)
        except (RequestError, StorageError) as err:
            self.fail(err)

    async def data_received(self, chunk: bytes) -> None:  # type: ignore[override]
        """Each chunk goes to the upload's temporary file; none is kept here."""
        if self._finished or self._upload is None:
            return
        self._received += len(chunk)
        if self._received > self.max_body():
            self._too_large = True
        if self._too_large or self._failure is not None:
            return
        try:
            await self.off_loop(self._upload.write, chunk)
        except (RequestError, StorageError) as err:
            self._failure = err
            self._discard()

    def on_finish(self) -> None:
        self._discard()

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self._discard()

    def _discard(self) -> None:
        """An upload not filed by now (refused, too large, cut off) leaves nothing behind."""
        upload, self._upload = self._upload, None
        if upload is not None:
            try:
                self.settings["coflux_blob_threads"].submit(upload.discard)
            except RuntimeError:  # the threads are shut down: the server is stopping
                upload.discard()

    async def head(self, project: str, key: str) -> None:
        async def action() -> None:
            size = await self.off_loop(self.hub.blobs(project).size, key)
            if size is None:
                raise NotFound(f"no blob {key}")
            self.set_header("Content-Length", str(size))
            self.finish(set_content_type="application/octet-stream")

        await self.guarded(action)

    async def get(self, project: str, key: str) -> None:
        async def action() -> None:
            store = self.hub.blobs(project)
            size = await self.off_loop(store.size, key)
            if size is None:
                raise NotFound(f"no blob {key}")
            await stream(self, store, key, size, "application/octet-stream")

        await self.guarded(action)

    async def put(self, project: str, key: str) -> None:
        async def action() -> None:
            if self._failure is not None:
                raise self._failure
            upload, self._upload = self._upload, None
            assert upload is not None  # made in prepare(), or the request was answered there
            try:
                await self.off_loop(upload.commit)
            finally:
                await self.off_loop(upload.discard)
            self.reply({"key": key, "size": upload.size}, 201)

        await self.guarded(action)
