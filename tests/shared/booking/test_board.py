"""The bookings board's query: filters, counts per state, keyset pages, the row's essentials."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import board
from shared.booking import service as booking
from shared.booking.board import BoardFilters, Eligibility, Sort
from shared.booking.models import Booking, BookingState
from shared.cases.errors import InvalidCursor, InvalidInput
from shared.citizens.models import Channel
from shared.intake import service as intake_service
from shared.intake.models import Intake, IntakeState
from shared.settings import Settings
from tests.factories import make_citizen, make_helpdesk, rome
from tests.shared.booking.board_data import NOW, board_data

TODAY = NOW.astimezone(rome(2026, 1, 1).tzinfo).date()
ALL_DATES = {"from": ""}


async def _ids(
    session: AsyncSession, settings: Settings, raw: dict[str, str], limit: int = 100
) -> set[int]:
    filters = board.parse_filters(raw, today=TODAY)
    page = await board.list_bookings(
        session=session, settings=settings, filters=filters, limit=limit
    )
    return {row.id for row in page.rows}


def _counts(page: board.BoardPage) -> dict[str, int]:
    return {c.state: c.count for c in page.counts if c.count}


async def test_the_board_opens_on_the_upcoming_bookings_soonest_first(
    session: AsyncSession, settings: Settings
) -> None:
    data = await board_data(session, settings)
    filters = board.parse_filters({}, today=TODAY)
    assert filters.day_from == TODAY and filters.sort is Sort.APPOINTMENT
    page = await board.list_bookings(session=session, settings=settings, filters=filters)
    first = [*sorted(data.ids("Anna", "Dario")), data.bookings["Bruno", "upcoming"]]
    assert [r.id for r in page.rows][:3] == first
    assert [r.starts_at for r in page.rows] == sorted(r.starts_at for r in page.rows)
    assert _counts(page) == {"booked": 6, "cancelled_by_citizen": 1}
    assert page.total.count == 7 and not page.total.more
    assert page.next_cursor is None and page.previous_cursor is None


async def test_filters_and_counts_on_a_known_data_set(
    session: AsyncSession, settings: Settings
) -> None:
    data = await board_data(session, settings)
    everything = await board.list_bookings(
        session=session, settings=settings, filters=board.parse_filters(ALL_DATES, today=TODAY)
    )
    assert len(everything.rows) == 11
    assert _counts(everything) == {
        "booked": 6, "attended": 1, "no_show": 3, "cancelled_by_citizen": 1,
    }  # fmt: skip
    franco = (
        data.ids("Franco") | data.ids("Franco", when="17 Nov") | data.ids("Franco", when="24 Nov")
    )
    cases = {
        "urgent=yes": ({"urgent": "yes"}, data.ids("Anna")),
        "channel=phone": (
            {"channel": "phone"}, data.ids("Bruno") | data.ids("Bruno", when="17 Nov")
        ),
        "channel=walk_in": ({"channel": "walk_in"}, data.ids("Elena")),
        "eligibility=not_eligible": ({"eligibility": "not_eligible"}, data.ids("Elena")),
        "eligibility=overridden": ({"eligibility": "overridden"}, data.ids("Dario")),
        "helpdesk=Ronco": ({"helpdesk": str(data.ronco.id)}, data.ids("Carla", "Dario")),
        "repeated no-shows": ({"no_shows": "repeated"}, franco),
        "moderation=pending": ({"moderation": "pending"}, data.ids("Carla")),
        "state=no_show": (
            {"state": "no_show"},
            data.ids("Franco", when="17 Nov") | data.ids("Gina", when="17 Nov")
            | data.ids("Franco", when="24 Nov"),
        ),
        "Tuesday 8 December": (
            {"from": "2026-12-08", "to": "08/12/2026"}, data.ids("Anna", "Bruno", "Franco", "Dario")
        ),
        "urgent=no, Ronco": (
            {"urgent": "no", "helpdesk": str(data.ronco.id), "state": "booked"},
            data.ids("Carla", "Dario"),
        ),
    }  # fmt: skip
    for name, (raw, expected) in cases.items():
        assert await _ids(session, settings, {**ALL_DATES, **raw}) == expected, name
    eligible = await _ids(session, settings, {**ALL_DATES, "eligibility": "eligible"})
    assert eligible == {r.id for r in everything.rows} - data.ids("Elena")
    not_moderated = await _ids(session, settings, {**ALL_DATES, "moderation": "none"})
    assert not_moderated == {r.id for r in everything.rows} - data.ids("Carla")
    # The counts are the filtered set's, whatever the state chosen: they work as tabs.
    no_shows = board.parse_filters({**ALL_DATES, "state": "no_show"}, today=TODAY)
    page = await board.list_bookings(session=session, settings=settings, filters=no_shows)
    assert _counts(page) == _counts(everything)
    phone = board.parse_filters({**ALL_DATES, "channel": "phone", "state": "booked"}, today=TODAY)
    page = await board.list_bookings(session=session, settings=settings, filters=phone)
    assert _counts(page) == {"booked": 1, "attended": 1}


async def test_a_row_has_the_citizen_the_case_and_the_pre_screening(
    session: AsyncSession, settings: Settings
) -> None:
    data = await board_data(session, settings)
    rows = {
        r.id: r
        for r in await board.rows_of(
            session=session, settings=settings, booking_ids=tuple(data.bookings.values())
        )
    }
    anna = rows[data.bookings["Anna", "upcoming"]]
    assert anna.name == "Anna Colombo" and anna.urgent and anna.reachable and anna.active
    assert anna.case_id is not None and anna.eligible is True and not anna.overridden
    assert anna.household == {"members": 2, "minors": 0}
    assert anna.needs == ["job_search"]
    assert anna.channel == Channel.TELEGRAM.value
    bruno = rows[data.bookings["Bruno", "upcoming"]]
    assert not bruno.on_telegram and not bruno.reachable
    carla = rows[data.bookings["Carla", "upcoming"]]
    assert carla.on_telegram and carla.unreachable and not carla.reachable
    assert carla.moderation == "pending"
    dario = rows[data.bookings["Dario", "upcoming"]]
    assert dario.eligible is True and dario.overridden
    assert rows[data.bookings["Elena", "upcoming"]].eligible is False
    assert rows[data.bookings["Franco", "upcoming"]].no_shows == 2
    assert rows[data.bookings["Gina", "upcoming"]].no_shows == 1
    assert not rows[data.bookings["Gina", "upcoming"]].active


async def test_counts_stop_at_the_limit(
    session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await board_data(session, settings)
    monkeypatch.setattr(board, "COUNT_LIMIT", 4)
    filters = board.parse_filters(ALL_DATES, today=TODAY)
    page = await board.list_bookings(session=session, settings=settings, filters=filters)
    booked = next(c for c in page.counts if c.state == "booked")
    assert (booked.count, booked.more) == (4, True)
    assert next(c for c in page.counts if c.state == "no_show").more is False
    assert page.total.more


@pytest.mark.parametrize("sort", list(Sort))
async def test_keyset_pages_hold_every_booking_once_with_equal_times(
    session: AsyncSession, settings: Settings, sort: Sort
) -> None:
    # Three helpdesks, two times each Tuesday and Wednesday: five bookings at every time,
    # and every booking made at the same moment.
    desks = [
        await make_helpdesk(
            session, name=f"Sportello {n}", places=5, closes_at=rome(2026, 1, 1, 10).time()
        )
        for n in range(3)
    ]
    made = []
    for n in range(3 * 2 * 2 * 5 // 3):
        citizen = await make_citizen(session, name=f"Persona {n}")
        desk = desks[n % 3]
        at = rome(2026, 12, 8 + (n // 10) % 2, 9, 30 * ((n // 5) % 2))
        made.append(
            await booking.book_slot(
                session=session,
                settings=settings,
                citizen_id=citizen.id,
                helpdesk_id=desk.id,
                starts_at=at,
                actor="test",
                now=NOW,
            )
        )
    await session.execute(update(Booking).values(created_at=NOW))
    filters = BoardFilters(sort=sort)
    seen: list[int] = []
    pages = []
    after = None
    while True:
        page = await board.list_bookings(
            session=session, settings=settings, filters=filters, after=after, limit=3
        )
        pages.append(page)
        seen += [r.id for r in page.rows]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert sorted(seen) == sorted(b.id for b in made)
    assert len(seen) == len(set(seen))
    # Back from the last page, page by page, the same pages in reverse.
    back = []
    before = pages[-1].previous_cursor
    while before is not None:
        page = await board.list_bookings(
            session=session, settings=settings, filters=filters, before=before, limit=3
        )
        back.append([r.id for r in page.rows])
        before = page.previous_cursor
    assert back == [[r.id for r in p.rows] for p in reversed(pages[:-1])]


def test_bad_filters_name_their_field() -> None:
    raw = {
        "state": "gone", "from": "31/02/2026", "to": "0001-01-01", "helpdesk": "9" * 25,
        "urgent": "maybe", "eligibility": "x", "channel": "pigeon", "moderation": "y",
        "no_shows": "3", "sort": "name",
    }  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        board.parse_filters(raw, today=TODAY)
    assert set(refused.value.errors) == set(raw)
    with pytest.raises(InvalidInput) as refused:
        board.parse_filters({"from": "2026-12-09", "to": "2026-12-08"}, today=TODAY)
    assert set(refused.value.errors) == {"to"}
    found = board.parse_filters({"from": "", "eligibility": "overridden"}, today=TODAY)
    assert found.day_from is None and found.eligibility is Eligibility.OVERRIDDEN
    assert board.parse_filters(board.query_of(found), today=TODAY) == found
    assert BookingState.BOOKED.value in {s.value for s in BookingState}


async def test_a_forged_cursor_is_refused(session: AsyncSession, settings: Settings) -> None:
    for cursor in ("x", "a20261207070000000000", "z20261207070000000000.1"):
        with pytest.raises(InvalidCursor):
            await board.list_bookings(
                session=session, settings=settings, filters=BoardFilters(), after=cursor
            )
    assert date(2026, 12, 7) == TODAY


async def test_the_urgent_filter_follows_the_citizens_urgency(
    session: AsyncSession, settings: Settings
) -> None:
    """The board filters on the booking's copy of the citizen's urgency: made with the
    booking, and changed with the citizen when a questionnaire assesses them again."""
    helpdesk = await make_helpdesk(session, name="Sportello Centro", places=2)
    anna = await make_citizen(session, name="Anna Colombo", urgent=True)
    bruno = await make_citizen(session, name="Bruno Ferrari")
    made = {}
    for citizen, at in ((anna, rome(2026, 12, 8, 9)), (bruno, rome(2026, 12, 8, 10))):
        done = await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id,
            helpdesk_id=helpdesk.id, starts_at=at, actor="staff:coordinatore", now=NOW,
        )  # fmt: skip
        made[citizen.name] = done.id
    await session.flush()
    urgent, not_urgent = {**ALL_DATES, "urgent": "yes"}, {**ALL_DATES, "urgent": "no"}
    assert await _ids(session, settings, urgent) == {made["Anna Colombo"]}
    assert await _ids(session, settings, not_urgent) == {made["Bruno Ferrari"]}

    # Bruno answers again, now struggling with urgent expenses; Anna no longer is.
    for citizen, answer in ((bruno, "yes"), (anna, "no")):
        [intake] = await session.scalars(select(Intake).where(Intake.citizen_id == citizen.id))
        intake.state = IntakeState.SUMMARY.value
        intake.answers = {
            **intake.answers, "urgent": answer, "phone": "+39 333 000 0000", "email": None,
            "fiscal_code": None,
        }  # fmt: skip
        await intake_service.confirm(
            session=session, citizen_id=citizen.id, now=NOW, settings=settings
        )
    assert (bruno.urgent, anna.urgent) == (True, False)
    assert await _ids(session, settings, urgent) == {made["Bruno Ferrari"]}
    assert await _ids(session, settings, not_urgent) == {made["Anna Colombo"]}
    stored = dict((await session.execute(select(Booking.id, Booking.citizen_urgent))).all())
    assert stored == {made["Bruno Ferrari"]: True, made["Anna Colombo"]: False}


async def test_every_booking_of_a_citizen_who_missed_twice_says_so(
    session: AsyncSession, settings: Settings
) -> None:
    """The second no-show marks the citizen's earlier bookings (the first one missed) and
    the booking made after it is marked when made; one no-show marks nothing (Gina)."""
    data = await board_data(session, settings)
    franco = data.citizens["Franco"].id
    stored = (
        await session.execute(
            select(Booking.citizen_id, Booking.citizen_repeated_no_shows, func.count()).group_by(
                Booking.citizen_id, Booking.citizen_repeated_no_shows
            )
        )
    ).all()
    assert {(c == franco, repeated, n) for c, repeated, n in stored if c == franco} == {
        (True, True, 3)
    }
    assert not any(repeated for c, repeated, _ in stored if c != franco)


@pytest.mark.parametrize("sort", list(Sort))
async def test_the_repeated_no_shows_in_pages_and_counts(
    session: AsyncSession, settings: Settings, sort: Sort
) -> None:
    """Walked by the bookings' copy of "missed twice": the same rows, order, pages and
    counts as the board's other walks give."""
    data = await board_data(session, settings)
    franco = data.citizens["Franco"].id

    async def rows(raw: dict[str, str]) -> list[board.BoardRow]:
        filters = board.parse_filters({**ALL_DATES, "sort": sort.value, **raw}, today=TODAY)
        page = await board.list_bookings(session=session, settings=settings, filters=filters)
        return page.rows

    assert len([r for r in await rows({}) if r.citizen_id == franco]) == 3
    for extra in ({}, {"eligibility": "eligible"}, {"channel": "telegram"}, {"state": "no_show"}):
        expected = [r.id for r in await rows(extra) if r.citizen_id == franco]
        tabs = {k: v for k, v in extra.items() if k != "state"}
        states = Counter(r.state for r in await rows(tabs) if r.citizen_id == franco)
        raw = {**ALL_DATES, "sort": sort.value, "no_shows": "repeated", **extra}
        filters = board.parse_filters(raw, today=TODAY)
        seen: list[int] = []
        after = None
        while True:
            page = await board.list_bookings(
                session=session, settings=settings, filters=filters, after=after, limit=1
            )
            seen += [r.id for r in page.rows]
            assert _counts(page) == dict(states), extra
            if page.next_cursor is None:
                break
            after = page.next_cursor
        assert seen == expected and expected, extra
