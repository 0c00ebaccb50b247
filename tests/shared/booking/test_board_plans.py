"""The board's statements as the databases plan them: each filter served by its index.

A partial index serves a query only if the database can prove the query's condition
implies the index's; SQLite proves it only from the same text. The statements are
captured as the board sends them (values bound as in a request) and explained with those
values (docs/benchmarks.md, "Bookings board").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import board
from shared.booking.models import BookingState
from shared.settings import Settings
from tests.shared.booking.board_data import board_data
from tests.shared.booking.test_board import TODAY

URGENT_INDEX = "ix_booking_urgent_state_starts_at"
REPEATED_INDEX = "ix_booking_repeated_state_starts_at"


async def _plans(session: AsyncSession, settings: Settings, raw: dict[str, str]) -> list[str]:
    """The plan of each statement of one board page (rows, then counts) for `raw`."""
    sent: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    connection = await session.connection()
    sync = connection.sync_connection
    assert sync is not None
    event.listen(sync, "before_cursor_execute", before)
    try:
        filters = board.parse_filters(raw, today=TODAY)
        await board.list_bookings(session=session, settings=settings, filters=filters)
    finally:
        event.remove(sync, "before_cursor_execute", before)
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        # The test's few rows make a sequential scan cheapest; what is asked here is
        # whether the index can serve the statement at all.
        await session.execute(text("SET LOCAL enable_seqscan = off"))
    plans = []
    for statement, parameters in sent:
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        found = await connection.exec_driver_sql(explain + statement, parameters)
        plans.append("\n".join(str(row[-1]) for row in found.all()))
    return plans


async def test_the_urgent_counts_walk_the_urgent_bookings_index(
    session: AsyncSession, settings: Settings
) -> None:
    """Each state's capped count of the urgent bookings reads the partial index of the
    urgent citizens' bookings, over every day and from today, not every booking of the
    state with a lookup of each (SQLite took 10.5 ms at 100k bookings instead of 0.4)."""
    await board_data(session, settings)
    for raw in ({"from": "", "urgent": "yes"}, {"urgent": "yes"}):
        _rows, counts = await _plans(session, settings, raw)
        # One arm per state; on a test's few rows PostgreSQL may read `booked` and
        # `no_show` from their own partial indexes (as good there), never the others.
        assert counts.count(URGENT_INDEX) >= len(BookingState) - 2, (raw, counts)


async def test_an_urgent_state_tab_walks_the_urgent_bookings_index(
    session: AsyncSession, settings: Settings
) -> None:
    await board_data(session, settings)
    rows, _counts = await _plans(
        session, settings, {"from": "", "urgent": "yes", "state": "attended"}
    )
    assert URGENT_INDEX in rows, rows


async def test_the_repeated_no_shows_walk_their_bookings_index(
    session: AsyncSession, settings: Settings
) -> None:
    """Their rows and each state's capped count read the partial index of the bookings of
    citizens who missed twice, not every no-show first (3.2 times as long at 100k bookings
    as at 1k on SQLite)."""
    await board_data(session, settings)
    for raw in ({"from": "", "no_shows": "repeated"}, {"no_shows": "repeated"}):
        rows, counts = await _plans(session, settings, raw)
        assert counts.count(REPEATED_INDEX) >= len(BookingState) - 2, (raw, counts)
    rows, _counts = await _plans(
        session, settings, {"from": "", "no_shows": "repeated", "state": "attended"}
    )
    assert REPEATED_INDEX in rows, rows
