"""The server's secret and the project tokens it signs."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from coflux import tokens
from coflux.errors import ConfigurationError
from coflux.tokens import Scope


def test_a_new_secret_is_private_long_and_kept(tmp_path: Path) -> None:
    first = tokens.load_secret(tmp_path)
    path = tmp_path / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= tokens.SECRET_MIN_BYTES
    assert tokens.load_secret(tmp_path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no temporary file left behind


@pytest.mark.parametrize("content", [b"", b"\n", b"short-key\n", b"a" * (tokens.SECRET_MIN_BYTES - 1)])
def test_an_empty_or_short_secret_is_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "secret").write_bytes(content)
    with pytest.raises(ConfigurationError, match="could forge"):
        tokens.load_secret(tmp_path)


def test_servers_starting_at_once_agree_on_one_secret(tmp_path: Path) -> None:
    seen: list[bytes] = []
    threads = [threading.Thread(target=lambda: seen.append(tokens.load_secret(tmp_path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1


def test_a_secret_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")  # (a folder's mode would not stop root, who runs CI)
    with pytest.raises(ConfigurationError, match="cannot create the secret"):
        tokens.load_secret(not_a_folder)


def test_tokens_name_their_scope_and_are_distinct() -> None:
    secret = b"k" * 32
    one, two = tokens.mint(secret, "p", Scope.SUBMIT), tokens.mint(secret, "p", Scope.SUBMIT)
    assert one != two
    assert one.startswith("cfx_submit_") and tokens.scope_of(one) is Scope.SUBMIT
    assert tokens.verify(secret, "p", one) is Scope.SUBMIT
    assert tokens.verify(secret, "q", one) is None
    assert tokens.verify(b"x" * 32, "p", one) is None
    assert tokens.verify(secret, "p", one + "0") is None
    assert tokens.verify(secret, "p", "") is None
