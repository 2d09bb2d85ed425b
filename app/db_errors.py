"""What a database error means for the row that caused it: refused for what it holds, or the
database unavailable. Works through tortoise's wrappers by reading the exception chain.

A refusal is final (the same row fails again); anything else may pass on a later try.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator

from asyncpg.exceptions import InterfaceError as PgInterfaceError
from asyncpg.exceptions import InternalClientError as PgInternalClientError

# SQLSTATE classes: 22 data exception (NUL or bad escape in text/jsonb, numeric out of range, too
# long), 23 integrity constraint (a row pointing at a gateway just deleted).
_REFUSED_CLASSES = ("22", "23")
# 08 connection, 40 rollback (serialization, deadlock), 53 resources, 57 operator intervention
# (shutdown, terminated backend, cannot connect now, query cancelled), 58 system (I/O).
_UNAVAILABLE_CLASSES = ("08", "40", "53", "57", "58")
_UNAVAILABLE_STATES = ("55P03", "55006", "55000")  # lock not available, object in use, database not accepting
_SQLITE_TRANSIENT = ("locked", "busy", "disk", "i/o", "unable to open")
_ARGUMENT_VALUE = re.compile(r"(query argument \$\d+).*", re.DOTALL)
MAX_REASON = 200


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 10:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def safe_text(text: str, limit: int = MAX_REASON) -> str:
    """`text` as printable ASCII of at most `limit` characters: storable and loggable anywhere."""
    cleaned = text.encode("ascii", "backslashreplace").decode("ascii")
    cleaned = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in cleaned)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def refusal(exc: BaseException) -> str | None:
    """Why the database refused a row for its content (short, printable, never the row's values),
    or None when the error is not about the row."""
    chain = list(_chain(exc))
    for error in chain:  # the driver's root cause first: it names the problem without the value
        if isinstance(error, UnicodeEncodeError):
            return f"a string the database cannot encode ({error.reason})"
        if isinstance(error, OverflowError):
            return safe_text(f"a number out of the column's range ({error})")
    for error in chain:
        state = _sqlstate(error)
        if state is not None and state.startswith(_REFUSED_CLASSES):
            return safe_text(f"{_first_line(error)} (SQLSTATE {state})")
        if isinstance(error, (sqlite3.IntegrityError, sqlite3.DataError)):
            return safe_text(str(error))
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Whether the error says the database cannot be reached or is busy now (worth a retry)."""
    for error in _chain(exc):
        state = _sqlstate(error)
        if state is not None and (state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES):
            return True
        if isinstance(error, (OSError, TimeoutError)):  # refused, reset, closed; DBConnectionError too
            return True
        # Connection closed or in use by a cancelled operation; a just-terminated idle connection
        # in a state asyncpg did not expect ("cannot switch to state …"); or one the pool took back
        # when it died ("connection has been released back to the pool"). The same words can tell
        # of a bug (a connection used after it was given back): callers that retry while the
        # database answers bound their retries (the dispatcher), so a bug never passes for an outage.
        if isinstance(error, (PgInterfaceError, PgInternalClientError)):
            return True
        if isinstance(error, sqlite3.OperationalError) and any(w in str(error).lower() for w in _SQLITE_TRANSIENT):
            return True
    return False


def is_database_unavailable(exc: BaseException) -> bool:
    """`is_unavailable`, and the error came from the database layer (tortoise, asyncpg, sqlite3):
    for errors that may have come from elsewhere, such as a plugin's own network call."""
    from asyncpg.exceptions import PostgresError
    from tortoise.exceptions import BaseORMException

    database_errors = (BaseORMException, PostgresError, PgInterfaceError, PgInternalClientError, sqlite3.Error)
    return is_unavailable(exc) and any(isinstance(error, database_errors) for error in _chain(exc))


def _first_line(exc: BaseException) -> str:
    """The message's first line, without the value asyncpg quotes for a query argument."""
    return _ARGUMENT_VALUE.sub(r"\1", str(exc).split("\n", 1)[0])


def describe(exc: BaseException) -> str:
    """A short description for a log line: the type and the first line, without argument values."""
    return safe_text(f"{type(exc).__name__}: {_first_line(exc)}")


@contextlib.asynccontextmanager
async def said_as_database_failure(what: str) -> AsyncIterator[None]:
    """Inside it, a database that cannot be reached is said as tortoise's DBConnectionError. asyncpg
    raises a bare ConnectionError when a pool cannot open a connection, which reads like anyone's
    network failure: a plugin run that met it in our own bookkeeping (the send queue's limits, a
    gateway lookup) must be run again once the database is back, not recorded as the plugin's."""
    try:
        yield
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        from tortoise.exceptions import DBConnectionError

        raise DBConnectionError(f"{what}: {describe(exc)}") from exc
