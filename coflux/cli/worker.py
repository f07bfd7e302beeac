"""``coflux worker``: run the targets of Python modules."""

from __future__ import annotations

import sys

import click

from coflux.cli.common import connection_options


def _parse_provides(values: tuple[str, ...]) -> dict[str, list[str]]:
    provides: dict[str, list[str]] = {}
    for value in values:
        key, equals, tag = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint="--provides")
        provides.setdefault(key, []).append(tag)
    return provides


@click.command()
@click.argument("modules", nargs=-1, required=True)
@connection_options
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Executions at once (or COFLUX_CONCURRENCY, or coflux.toml; default: 4).",
)
@click.option("--register", is_flag=True, help="List the modules' workflows in the workspace.")
@click.option("--dev", is_flag=True, help="Reload on code change (implies --register).")
@click.option("--provides", multiple=True, metavar="KEY=VALUE", help="A tag this worker provides.")
@click.option(
    "--inline-limit",
    type=click.IntRange(min=1),
    metavar="BYTES",
    help="Bytes, pickles, arrays and frames this long or longer go to the blob store, shorter ones "
    "inside the value (or COFLUX_INLINE_LIMIT, or coflux.toml; default: 16384).",
)
@click.option(
    "--large-limit",
    type=click.IntRange(min=1),
    metavar="CHARS",
    help="A value whose JSON is longer travels as one blob "
    "(or COFLUX_LARGE_LIMIT, or coflux.toml; default: 1048576).",
)
def worker(
    modules: tuple[str, ...],
    concurrency: int | None,
    register: bool,
    dev: bool,
    provides: tuple[str, ...],
    inline_limit: int | None,
    large_limit: int | None,
    **options: str | None,
) -> None:
    """Run a worker for the targets defined in MODULES.

    It prints where it is connected and the targets it serves; while the server can't be reached it
    says why (on stderr) and keeps retrying. A refused token or a URL that is not a Coflux server
    ends it with one line on stderr and exit status 2."""
    from coflux.worker.runner import WorkerRefused, run_worker

    try:
        run_worker(
            modules=list(modules),
            project=options["project"],
            workspace=options["workspace"],
            url=options["url"],
            token=options["token"],
            concurrency=concurrency,
            register=register or dev,
            dev=dev,
            provides=_parse_provides(provides),
            inline_limit=inline_limit,
            large_limit=large_limit,
        )
    except WorkerRefused as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
