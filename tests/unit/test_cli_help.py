"""`coflux --help` and every command's: a one-line description each, only the options that do
something for the command, and defaults stated once and right."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from coflux.cli import main
from coflux.settings import DEFAULT_PROJECT, DEFAULT_URL, DEFAULT_WORKSPACE


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


COMMANDS = dict(_commands(main))


def _options(path: tuple[str, ...]) -> set[str]:
    return {option for p in COMMANDS[path].params for option in p.opts if option.startswith("--")}


def test_every_command_lists_with_a_whole_one_line_description() -> None:
    groups = [(), *(path for path, command in COMMANDS.items() if isinstance(command, click.Group))]
    for group in groups:
        listing = CliRunner().invoke(main, [*group, "--help"], terminal_width=80).stdout
        commands = listing.split("Commands:\n", 1)[1].splitlines()
        assert len(commands) == len(COMMANDS[group].commands if group else main.commands), listing  # type: ignore[attr-defined]
        for line in commands:
            name, _, description = line.strip().partition(" ")
            assert description.strip(), f"coflux {' '.join(group)} {name} has no description"
            assert not description.endswith("..."), f"cut short: {line.strip()!r}"
            assert description.strip()[0].isupper() and description.endswith("."), line


@pytest.mark.parametrize(
    ("path", "absent"),
    [
        (("projects", "list"), {"--project", "--workspace"}),
        (("projects", "create"), {"--project", "--workspace"}),
        (("tokens", "create"), {"--workspace"}),
        (("workspaces", "list"), {"--workspace"}),
        (("workspaces", "pause"), {"--workspace"}),
        (("runs", "cancel"), {"--workspace"}),
        (("runs", "logs"), {"--workspace"}),
    ],
)
def test_options_that_would_do_nothing_are_not_offered(path: tuple[str, ...], absent: set[str]) -> None:
    assert not _options(path) & absent
    refused = CliRunner().invoke(main, [*path, "--workspace", "dev"])
    assert refused.exit_code == 2 and "No such option '--workspace'" in refused.stderr


def test_defaults_are_stated_once_and_as_the_settings_have_them() -> None:
    shown = CliRunner().invoke(main, ["runs", "list", "--help"], terminal_width=200).stdout
    assert shown.count(f"default: {DEFAULT_URL}") == 1
    assert (
        shown.count(f"default: {DEFAULT_PROJECT})") == 1
        and shown.count(f"default: {DEFAULT_WORKSPACE})") == 1
    )
    assert "[default: 20; 1<=x<=200]" in shown
    view = CliRunner().invoke(main, ["runs", "show", "--help"], terminal_width=200).stdout
    assert "--workspace TEXT  The workspace to see the run from (default: the run's own)." in view
    assert "default: main" not in view  # its --workspace is a view, not the settings' workspace
    served = CliRunner().invoke(main, ["server", "--help"], terminal_width=200).stdout
    assert "[env var: " not in served and served.count("[default: 7777]") == 1
