"""``coflux server``: a headless Jupyter server hosting only the Coflux extension."""

from __future__ import annotations

import click

from coflux.cli.common import lazy


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, envvar="COFLUX_HOST", help="Interface (COFLUX_HOST)."
)
@click.option(
    "--port", default=7777, show_default=True, type=int, envvar="COFLUX_PORT", help="Port (COFLUX_PORT)."
)
@click.option(
    "--data-dir",
    default="./.coflux",
    show_default=True,
    envvar="COFLUX_DATA_DIR",
    help="SQLite files, blobs and the secret (COFLUX_DATA_DIR).",
)
@click.option(
    "--database-url",
    default=None,
    envvar="COFLUX_DATABASE_URL",
    help="PostgreSQL URL (COFLUX_DATABASE_URL; default: SQLite in --data-dir).",
)
@click.option(
    "--blob-store",
    default=None,
    envvar="COFLUX_BLOB_STORE",
    help="Where blobs (values, asset files) go: a folder or any fsspec URL, e.g. s3://bucket/prefix "
    "(COFLUX_BLOB_STORE; default: DATA_DIR/blobs).",
)
@click.option(
    "--token",
    default=None,
    envvar="COFLUX_SERVER_TOKEN",
    help="The admin (Jupyter) token (COFLUX_SERVER_TOKEN, better: every local user can read a "
    "command line; default: generated).",
)
@click.option("--exit-with-stdin", is_flag=True, hidden=True, help="Stop when stdin closes (embedded use).")
def server(
    host: str,
    port: int,
    data_dir: str,
    database_url: str | None,
    blob_store: str | None,
    token: str | None,
    exit_with_stdin: bool,
) -> None:
    """Run the Coflux server (a headless Jupyter server).

    It hosts only the Coflux extension, and prints its URL, its admin token and a worker token of
    project default. If Coflux can't start, it exits 1 with the reason."""
    run_server = lazy("jupyter_ext.app", "run_server")
    run_server(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        blob_store=blob_store,
        token=token,
        exit_with_stdin=exit_with_stdin,
    )
