"""Writes that outlive a database restart.

A worker's thread keeps its connection idle for as long as a run lasts; when
PostgreSQL restarts meanwhile, the next query on it fails, and Django does
not reconnect outside a request. `retry_database(write)` closes the broken
connection and tries again, with back-off, for up to
TAILOR_DATABASE_RETRY_SECONDS. The write must be safe to repeat (the ledger's
writes are: conditional updates and upserts fenced on the attempt).

Trade-off: a run waits (its training goes on in another thread) rather than
failing at the first error, so a database that never returns delays the
run's end by the retry time before it is reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")


def retry_database(write: Callable[[], T], *, seconds: float | None = None) -> T:
    """`write()`, retried while the database is unreachable. Inside a
    transaction nothing can be retried, so errors propagate there."""
    budget = settings.TAILOR_DATABASE_RETRY_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + budget
    delay = 0.2
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            if (
                connection.in_atomic_block
                or not _unreachable(exc)
                or time.monotonic() + delay > deadline
            ):
                raise
            logger.warning("Database unreachable (%s); retrying in %.1f s", exc, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


# SQLSTATEs of a server that is away or going away: every connection
# exception (class 08), and the server shutting down, crashing or starting.
_AWAY_STATES = ("08", "57P01", "57P02", "57P03")


def _unreachable(exc: Exception) -> bool:
    """Whether the error is the database being away (or, on SQLite, busy), not
    a mistake in the query that a retry would only repeat.

    Judged from the error itself: by the time it reaches us, leaving an
    `atomic()` block may already have replaced the broken connection with a
    fresh one that works, so the connection's state says nothing about why
    the write failed."""
    if isinstance(exc, InterfaceError):  # a connection Django already closed
        return True
    if "locked" in str(exc):  # SQLite: another process holds the write lock
        return True
    cause = exc.__cause__
    state = getattr(cause, "sqlstate", None)
    if state is not None:
        return state.startswith(_AWAY_STATES)
    if connection.vendor == "postgresql" and cause is not None:
        # psycopg's own errors with no SQLSTATE are the client's: the server
        # refused the connection, or the connection is lost or closed.
        return True
    if connection.connection is None:
        return True
    return not connection.is_usable()
