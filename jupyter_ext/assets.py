"""Assets over HTTP: persist one (workers), read its listing, download its files (streamed from the
blob store), record a restoration. The project's orchestrator checks and records; these handlers
parse, check blobs on the blob threads, and answer."""

from __future__ import annotations

import posixpath
from urllib.parse import quote

from coflux.orchestrator.assets import BlobSizes, check_asset_id
from jupyter_ext.blobs import sizes, stream
from jupyter_ext.handlers import CofluxHandler


class _AssetHandler(CofluxHandler):
    auth_resource = "coflux:assets"

    def blob_sizes(self, project: str) -> BlobSizes:
        store = self.hub.blobs(project)

        async def read(keys: list[str]) -> dict[str, int | None]:
            return await self.off_loop(sizes, store, keys)

        return read


class AssetsHandler(_AssetHandler):
    """``POST projects/{p}/assets`` ``{"execution_id", "name", "entries"}``: the asset, recorded."""

    async def post(self, project: str) -> None:
        async def action() -> None:
            data = self.body()
            service = await self.service(project)
            asset = await service.assets.persist(
                data.get("execution_id"), data.get("name"), data.get("entries"), self.blob_sizes(project)
            )
            self.reply(asset, 201)

        await self.guarded(action)


class AssetHandler(_AssetHandler):
    """``GET projects/{p}/assets/{id}``: its listing, who persisted it and who restored it."""

    async def get(self, project: str, asset_id: str) -> None:
        async def action() -> None:
            check_asset_id(asset_id)
            service = await self.service(project)
            self.reply(await service.assets.get(asset_id))

        await self.guarded(action)


class AssetFileHandler(_AssetHandler):
    """``GET projects/{p}/assets/{id}/files/{path}``: the file's bytes, streamed; a download
    (``Content-Disposition: attachment``) unless ``?inline=1``. A worker chose the media type, so
    a browser opening the file runs nothing of it (``default-src 'none'``, sandboxed, no sniffing)."""

    @property
    def content_security_policy(self) -> str:
        return f"{super().content_security_policy}; sandbox"

    async def get(self, project: str, asset_id: str, path: str) -> None:
        async def action() -> None:
            check_asset_id(asset_id)
            service = await self.service(project)
            entry = await service.assets.entry(asset_id, path)
            if self.get_query_argument("inline", "") not in ("1", "true"):
                filename = quote(posixpath.basename(entry["path"]), safe="")
                self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{filename}")
            self.set_header("X-Content-Type-Options", "nosniff")
            store = self.hub.blobs(project)
            await stream(self, store, entry["blob_key"], entry["size"], entry["media_type"])

        await self.guarded(action)


class RestorationsHandler(_AssetHandler):
    """``POST projects/{p}/assets/{id}/restorations`` ``{"execution_id"}``: it restored the asset."""

    async def post(self, project: str, asset_id: str) -> None:
        async def action() -> None:
            check_asset_id(asset_id)
            data = self.body()
            service = await self.service(project)
            await service.assets.restored(asset_id, data.get("execution_id"))
            self.reply({}, 201)

        await self.guarded(action)
