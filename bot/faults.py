"""Faults the bot expects and handles (the database away, Telegram refusing a call), told
apart from bugs, and named in one log line without what the citizen wrote."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc


def database_unavailable(error: BaseException) -> bool:
    """The database did not answer (down, restarting, unreachable, out of connections, a
    connection lost mid-transaction), as opposed to a bug: worth waiting for.

    A failure to connect at all may surface as the driver's own error, which SQLAlchemy
    doesn't wrap (asyncpg raises `OSError`, or a `PostgresError` while the server starts):
    callers that know nothing was asked of the database yet treat any error as this.
    """
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error,
        OSError | sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError,
    )


def describe(error: BaseException) -> str:
    """`Kind: what Telegram (or the library) said`, naming the kind once.

    Telegram's own descriptions may start with it already ("Forbidden: bot was blocked by
    the user"); Bot API error texts carry no message content.
    """
    kind, said = type(error).__name__, str(error)
    if not said:
        return kind
    return said if said.lower().startswith(kind.lower()) else f"{kind}: {said}"
