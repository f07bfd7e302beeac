"""What went wrong with storage, in words an operator can act on, and as the one error tree.

SQLAlchemy wraps the driver's errors, which wrap the operating system's; the cause that matters (a
full disk, a file that isn't a database) is found underneath and named plainly. A full disk becomes
:class:`~coflux.errors.StorageFull` (freeing space is the fix, not a retry); everything else
:class:`~coflux.errors.StorageError`.
"""

from __future__ import annotations

import errno
from typing import Final

from coflux.errors import StorageError, StorageFull

_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
_POSTGRES_DISK_FULL: Final = "53100"
# SQLite's own messages (sqlite3ErrStr) for the causes worth naming when a database is opened.
_SQLITE_CAUSES: Final = (
    ("database or disk is full", "no space left on the device holding its database"),
    ("file is not a database", "its database is not a SQLite database"),
    ("database disk image is malformed", "its database is corrupt"),
    ("unable to open database file", "its database cannot be opened"),
    ("readonly database", "its database is read-only"),
)


def cause_of(error: BaseException) -> BaseException:
    """The error underneath our own and SQLAlchemy's wrapping: the driver's or the system's."""
    while True:
        inner = getattr(error, "orig", None)  # sqlalchemy.exc.DBAPIError
        if not isinstance(inner, BaseException) and isinstance(error, StorageError):
            inner = error.__cause__
        if not isinstance(inner, BaseException):
            return error
        error = inner


def is_full(error: BaseException) -> bool:
    """Whether ``error`` means that no space is left (SQLite, PostgreSQL or the file system)."""
    cause = cause_of(error)
    if isinstance(cause, StorageFull):
        return True
    if isinstance(cause, OSError) and cause.errno in _FULL_ERRNOS:
        return True
    if getattr(cause, "sqlstate", None) == _POSTGRES_DISK_FULL:
        return True
    return "database or disk is full" in str(cause)


def storage_error(message: str, error: BaseException) -> StorageError:
    """``message`` as the error to raise for ``error``: :class:`StorageFull` when no space is left."""
    return StorageFull(message) if is_full(error) else StorageError(message)


def opening_error(project: str, location: str, error: BaseException) -> StorageError:
    """Why ``project``'s storage at ``location`` could not be opened or created, e.g.
    "project 'p': its database is not a SQLite database (/data/projects/p.db)"."""
    return storage_error(f"project {project!r}: {describe(error, 'cannot be opened')} ({location})", error)


def describe(error: BaseException, failed: str = "failed") -> str:
    """What went wrong, about "its database": the cause when it is one worth naming, else what
    ``failed`` and the driver's words, e.g. "its database is corrupt"."""
    cause = cause_of(error)
    if is_full(error):
        return "no space left on the device holding its database"
    text = str(cause)
    for needle, description in _SQLITE_CAUSES:
        if needle in text:
            return description
    if isinstance(cause, OSError) and cause.strerror:
        return f"its database {failed}: {cause.strerror}"
    return f"its database {failed}: {type(cause).__name__}: {text.splitlines()[0] if text else ''}"
