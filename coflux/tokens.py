"""Project tokens and the server's secret that signs them (pure: no Jupyter, no orchestrator).

A project token grants one project, in one scope:

- ``worker``: the project's worker socket and everything a notebook kernel needs (start runs with
  any arguments, pickles included; workspaces; blobs; runs, logs and assets);
- ``submit``: for CI and dashboards: start runs with JSON-only arguments (nothing a worker would
  unpickle), re-run and cancel, and read runs, logs, assets and events.

Neither opens another project or any Jupyter API. A token reads ``cfx_<scope>_<nonce>_<mac>``: the
scope in clear (so people and error messages can tell which one they hold), a random nonce (each
token minted is distinct), and an HMAC-SHA256 under the secret of the scope, the project and the
nonce. Verification needs nothing but the secret, so tokens stay valid across restarts; replacing
the secret revokes them all.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Final

from coflux.errors import ConfigurationError

SECRET_BYTES: Final = 32
"""Random bytes in a new secret (written as 64 hex digits)."""
SECRET_MIN_BYTES: Final = 32
"""A secret file must hold at least this many bytes of key: an empty or short key is refused."""

_TOKEN: Final = re.compile(r"cfx_(worker|submit)_([0-9a-f]{16})_([0-9a-f]{64})")


class Scope(enum.Enum):
    WORKER = "worker"
    SUBMIT = "submit"


def mint(secret: bytes, project: str, scope: Scope) -> str:
    """A new token for ``project`` in ``scope`` (a fresh nonce each call)."""
    nonce = secrets.token_hex(8)
    return f"cfx_{scope.value}_{nonce}_{_mac(secret, project, scope, nonce)}"


def verify(secret: bytes, project: str, token: str) -> Scope | None:
    """The scope ``token`` grants in ``project``, or None if it grants nothing there."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    scope, nonce, mac = Scope(match[1]), match[2], match[3]
    return scope if hmac.compare_digest(_mac(secret, project, scope, nonce), mac) else None


def looks_like_token(value: str) -> bool:
    """Shaped like a project token (whether or not it is valid anywhere)."""
    return value.startswith("cfx_")


def scope_of(token: str) -> Scope | None:
    """The scope a token claims (unverified: for messages only)."""
    match = _TOKEN.fullmatch(token)
    return Scope(match[1]) if match else None


_SECRET_PARAMETER: Final = re.compile(r"([?&][^=&#]*(?:token|auth|key|secret|password)[^=&#]*=)[^&#]*", re.I)
_PASSWORD: Final = re.compile(r"^([a-z][a-z0-9+.-]*://[^/@:]*:)[^/@]*@", re.I)


def redact_url(url: str) -> str:
    """``url`` fit for a log: the values of token-like query parameters (``?token=``...) and a
    password in it replaced by ``[secret]``."""
    return _PASSWORD.sub(r"\1[secret]@", _SECRET_PARAMETER.sub(r"\1[secret]", url))


def _mac(secret: bytes, project: str, scope: Scope, nonce: str) -> str:
    message = f"coflux-token/1\0{scope.value}\0{project}\0{nonce}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def load_secret(data_dir: Path) -> bytes:
    """``data_dir/secret``, created on first use. Created atomically (a private temporary file,
    fsynced, then linked into place, so a crash or a full disk never leaves a partial secret and two
    servers starting at once agree on one), mode 0600. An existing secret shorter than
    :data:`SECRET_MIN_BYTES` (empty after a full disk, say) is refused: anyone could forge tokens."""
    path = data_dir / "secret"
    if not path.exists():
        _create_secret(path)
    try:
        key = path.read_bytes().strip()
    except OSError as err:
        raise ConfigurationError(f"cannot read the secret {path}: {err.strerror or err}") from err
    if len(key) < SECRET_MIN_BYTES:
        raise ConfigurationError(
            f"the secret {path} holds {len(key)} bytes; at least {SECRET_MIN_BYTES} are needed, or anyone "
            "could forge project tokens. Delete the file to have a new one made (tokens signed by the "
            "old secret stop working)"
        )
    return key


def _create_secret(path: Path) -> None:
    try:
        fd, temporary = tempfile.mkstemp(prefix=".secret-", dir=path.parent)  # mode 0600
    except OSError as err:
        raise ConfigurationError(f"cannot create the secret {path}: {err.strerror or err}") from err
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(SECRET_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # never replaces a secret another process made meanwhile
        except FileExistsError:
            return
        _fsync_folder(path.parent)
    except OSError as err:
        raise ConfigurationError(f"cannot create the secret {path}: {err.strerror or err}") from err
    finally:
        Path(temporary).unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
