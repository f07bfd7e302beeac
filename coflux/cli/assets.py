"""``coflux assets``: what an asset holds, and its files downloaded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from coflux.assets import AssetError, matches
from coflux.cli.common import json_option, make_client, print_json, project_options


@click.group()
def assets() -> None:
    """Show an asset's files and download them."""


@assets.command("show")
@click.argument("asset_id", metavar="ASSET")
@json_option
@project_options
def assets_show(asset_id: str, as_json: bool, **options: str | None) -> None:
    """Show an asset's files and who made and used it.

    A table of its files (path, size, media type), then the execution that persisted it and
    those that restored it."""
    data = make_client(options).asset_data(asset_id)
    if as_json:
        print_json(data)
    else:
        click.echo("\n".join(asset_report(data)))


@assets.command("download")
@click.argument("asset_id", metavar="ASSET")
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder to write the files in (at their paths in the asset; made if missing).",
)
@click.option("--match", metavar="GLOB", help="Only the files whose path matches, e.g. '*.csv'.")
@project_options
def assets_download(asset_id: str, folder: Path, match: str | None, **options: str | None) -> None:
    """Download an asset's files, byte for byte.

    Prints each file's path. A path in the asset that would leave the folder is refused (nothing
    is written outside it)."""
    asset = make_client(options).asset(asset_id)
    wanted = [path for path in asset.entries if matches(path, match)]
    if not wanted:
        raise AssetError(f"asset {asset_id} has no file matching {match!r}")
    folder.mkdir(parents=True, exist_ok=True)
    for path in asset.restore(match=match, at=folder).values():
        click.echo(str(path))


def asset_report(data: dict[str, Any]) -> list[str]:
    """The lines of ``coflux assets show``: a title, a table of files, provenance."""
    entries = data.get("entries") or []
    name = f" {data['name']}" if data.get("name") else ""
    total = sum(int(e["size"]) for e in entries)
    lines = [f"asset {data['asset_id']}{name}: {len(entries)} files, {human_size(total)}"]
    width = max([len("PATH"), *(len(str(e["path"])) for e in entries)])
    lines.append(f"  {'PATH':<{width}}  {'SIZE':>9}  MEDIA TYPE")
    lines.extend(
        f"  {e['path']:<{width}}  {human_size(int(e['size'])):>9}  {e['media_type']}" for e in entries
    )
    created = f" at {_time(data['created_at'])}" if data.get("created_at") else ""
    lines.append(f"persisted by {data.get('execution_id')}{created}")
    restored = data.get("restored_by") or []
    lines.extend(f"restored by {r['execution_id']} at {_time(r.get('restored_at'))}" for r in restored)
    if not restored:
        lines.append("not restored by any execution yet")
    return lines


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _time(value: Any) -> str:
    """Epoch seconds or an ISO string as local time, to the second."""
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
