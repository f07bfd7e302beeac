"""One resolver for every command, the worker, the kernel and cf.Client: arguments, then COFLUX_*
variables, then the nearest coflux.toml, then one set of defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coflux import settings
from coflux.client import Client
from coflux.errors import ConfigurationError
from coflux.worker.settings import resolve_settings as worker_settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in settings.KEYS:
        monkeypatch.delenv(f"COFLUX_{key.upper()}", raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_defaults_point_at_coflux_servers_default_address() -> None:
    resolved = settings.resolve()
    assert (
        resolved.url == f"http://127.0.0.1:{settings.DEFAULT_PORT}/coflux" == "http://127.0.0.1:7777/coflux"
    )
    assert (resolved.project, resolved.workspace, resolved.token, resolved.concurrency) == (
        "default",
        "main",
        None,
        4,
    )
    assert resolved.source("url") == "default" and resolved.config is None


def test_arguments_then_environment_then_the_nearest_toml_then_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "coflux.toml").write_text(
        '[coflux]\nurl = "http://toml/coflux/"\ntoken = "t-toml"\nproject = "p-toml"\n'
        'workspace = "w-toml"\nconcurrency = 3\n'
    )
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    toml = settings.resolve()
    assert (toml.url, toml.token, toml.project, toml.workspace, toml.concurrency) == (
        "http://toml/coflux",
        "t-toml",
        "p-toml",
        "w-toml",
        3,
    )
    assert toml.source("project") == "coflux.toml" and toml.config == tmp_path / "coflux.toml"
    monkeypatch.setenv("COFLUX_PROJECT", "p-env")
    monkeypatch.setenv("COFLUX_URL", "http://env/coflux")
    monkeypatch.setenv("COFLUX_CONCURRENCY", "7")
    env = settings.resolve()
    assert (env.url, env.project, env.workspace, env.concurrency) == (
        "http://env/coflux",
        "p-env",
        "w-toml",
        7,
    )
    assert env.source("url") == "environment"
    given = settings.resolve(project="p-arg", workspace="w-arg", concurrency=2)
    assert (given.project, given.workspace, given.token, given.concurrency) == ("p-arg", "w-arg", "t-toml", 2)
    assert given.source("project") == "argument"


def test_the_client_and_the_worker_resolve_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "coflux.toml").write_text('project = "from-toml"\nconcurrency = 9\n')
    monkeypatch.setenv("COFLUX_WORKSPACE", "from-env")
    client = Client()
    worker = worker_settings()
    assert (client.project, client.workspace, client.url) == ("from-toml", "from-env", settings.DEFAULT_URL)
    assert (worker.project, worker.workspace, worker.url, worker.concurrency) == (
        "from-toml",
        "from-env",
        settings.DEFAULT_URL,
        9,
    )


@pytest.mark.parametrize(
    ("toml", "variable", "message"),
    [
        ('url = "ftp://x"', None, "http(s)://"),
        ('project = "no spaces"', None, "invalid project name"),
        ("concurrency = 0", None, "concurrency must be"),
        ('concurrency = "four"', None, "concurrency must be an integer"),
        ("[coflux\n", None, "cannot read"),
        (None, ("COFLUX_CONCURRENCY", "lots"), "from COFLUX_CONCURRENCY"),
        (None, ("COFLUX_WORKSPACE", "a//b"), "from COFLUX_WORKSPACE"),
    ],
)
def test_a_setting_that_cant_be_right_is_an_error_naming_where_it_came_from(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    toml: str | None,
    variable: tuple[str, str] | None,
    message: str,
) -> None:
    if toml is not None:
        (tmp_path / "coflux.toml").write_text(toml + "\n")
    if variable is not None:
        monkeypatch.setenv(*variable)
    with pytest.raises(ConfigurationError, match=re.escape(message)) as caught:
        settings.resolve()
    if toml is not None and "cannot read" not in message:
        assert str(tmp_path / "coflux.toml") in str(caught.value)
