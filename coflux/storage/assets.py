"""The queries of assets: an asset, its entries, the assets some executions persisted, and who
restored one. Written as history through :class:`~coflux.storage.Batch` (``assets``,
``asset_entries``, ``asset_restorations``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from coflux.storage import tables as t

Row = dict[str, Any]


class AssetQueries:
    """Mixed into :class:`~coflux.storage.SqlStore`, which reads through ``_all``."""

    _all: Callable[[Any], list[Row]]
    """The store's reader of a statement's rows (:meth:`SqlStore._all`)."""

    def asset(self, asset_id: str) -> Row | None:
        """asset_id, execution_id, name, created_at."""
        rows = self._all(sa.select(t.assets).where(t.assets.c.asset_id == asset_id))
        return rows[0] if rows else None

    def asset_entries(self, asset_id: str) -> list[Row]:
        """path, blob_key, size, media_type, by path."""
        entries = t.asset_entries.c
        return self._all(
            sa.select(entries.path, entries.blob_key, entries.size, entries.media_type)
            .where(entries.asset_id == asset_id)
            .order_by(entries.path)
        )

    def asset_entry(self, asset_id: str, path: str) -> Row | None:
        """The entry at ``path`` of the asset: path, blob_key, size, media_type."""
        entries = t.asset_entries.c
        rows = self._all(
            sa.select(entries.path, entries.blob_key, entries.size, entries.media_type).where(
                (entries.asset_id == asset_id) & (entries.path == path)
            )
        )
        return rows[0] if rows else None

    def assets_of(self, execution_ids: list[str]) -> list[Row]:
        """The assets these executions persisted, oldest first: asset_id, execution_id, name,
        created_at, entries (how many)."""
        if not execution_ids:
            return []
        assets = t.assets.c
        query = (
            sa.select(
                assets.asset_id,
                assets.execution_id,
                assets.name,
                assets.created_at,
                sa.func.count(t.asset_entries.c.path).label("entries"),
            )
            .outerjoin(t.asset_entries, t.asset_entries.c.asset_id == assets.asset_id)
            .where(assets.execution_id.in_(execution_ids))
            .group_by(assets.asset_id, assets.execution_id, assets.name, assets.created_at)
            .order_by(assets.created_at, assets.asset_id)
        )
        return self._all(query)

    def restorations(self, asset_id: str) -> list[Row]:
        """Who restored the asset, in order: execution_id, restored_at."""
        restorations = t.asset_restorations.c
        return self._all(
            sa.select(restorations.execution_id, restorations.restored_at)
            .where(restorations.asset_id == asset_id)
            .order_by(restorations.id)
        )
