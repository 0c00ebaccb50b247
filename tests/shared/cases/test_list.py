"""The case list: search, filters, visibility and keyset pagination."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.cases import access, listing
from shared.cases import service as cases
from shared.cases.errors import InvalidCursor, InvalidInput
from shared.cases.listing import CaseFilters
from shared.cases.models import Case, CaseState
from shared.db import Database
from shared.settings import Settings
from shared.staff.models import Role
from tests.factories import make_helpdesk
from tests.shared.cases.builders import (
    NOW,
    TUESDAY_9,
    WEDNESDAY_9,
    book,
    checked_in,
    make_candidate,
    make_staff,
    member,
)


async def _ids(
    session: AsyncSession, settings: Settings, staff: access.StaffMember, **filters: object
) -> list[int]:
    page = await listing.list_cases(
        session=session,
        settings=settings,
        staff=staff,
        filters=CaseFilters(**filters),  # type: ignore[arg-type]
    )
    return [row.id for row in page.rows]


async def test_search_by_name_phone_fiscal_code_and_booking_code(
    session: AsyncSession, settings: Settings
) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    helpdesk = await make_helpdesk(session)
    maria, maria_case = await make_candidate(
        session, name="Maria Rossi", phone="+393316938049", fiscal_code="RSSMRA85D03F205P"
    )
    _n, nicolo = await make_candidate(session, name="Nicolò D'Amico", phone="+393471112233")
    _r, rossana = await make_candidate(session, name="Rossana Bianchi")
    made = await book(session, settings, maria, helpdesk)

    async def found(text: str) -> set[int]:
        return set(await _ids(session, settings, anna, text=text))

    assert await found("ross") == {maria_case.id, rossana.id}
    assert await found("maria ROSS") == await found("Rossi Maria") == {maria_case.id}
    assert await found("rossi m") == {maria_case.id}
    assert await found("mar rossi") == set()  # the first of several words is a whole word
    assert await found("nicolo") == await found("Nicolò") == {nicolo.id}
    assert await found("d'amico") == await found("damico") == await found("amico") == {nicolo.id}
    for phone in ("331 693 8049", "+39 331 6938049", "393316938049", "0039 3316938049"):
        assert await found(phone) == {maria_case.id}, phone
    assert await found("rssmra85d03f205p") == {maria_case.id}
    assert await found(made.code.lower()) == {maria_case.id}
    assert await found("Verdi") == set()
    assert await found("x") == set()
    searches = (
        await session.scalars(select(AuditEvent).where(AuditEvent.action == "case.search"))
    ).all()
    assert searches[0].actor == "staff:anna"
    # Not what was typed: a name, a phone number or a booking code (SPEC J8).
    assert searches[0].details == {"by_text": True, "results": 2}


async def test_filters(session: AsyncSession, settings: Settings) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    luca = await make_staff(session, "luca")
    comune = await make_helpdesk(session)
    farsi = await make_helpdesk(session, name="Sportello Farsi Prossimo")
    _a, fresh = await make_candidate(session, name="Anna Neri", urgent=True)
    booked_citizen, booked = await make_candidate(session, name="Bruno Galli")
    await book(session, settings, booked_citizen, farsi, WEDNESDAY_9)
    _c, arrived, _b = await checked_in(session, settings, comune, name="Carla Sala", urgent=True)
    await cases.assign_case(
        session=session, case_id=arrived.id, assignee_id=luca.id, staff=anna, now=NOW
    )

    async def ids(**filters: object) -> set[int]:
        return set(await _ids(session, settings, anna, **filters))

    assert await ids() == {fresh.id, booked.id, arrived.id}
    assert await ids(state=CaseState.NEW) == {fresh.id}
    assert await ids(state=CaseState.CHECKED_IN) == {arrived.id}
    assert await ids(urgent=True) == {fresh.id, arrived.id}
    assert await ids(urgent=False) == {booked.id}
    assert await ids(helpdesk_id=farsi.id) == {booked.id}
    tuesday, wednesday = TUESDAY_9.date(), WEDNESDAY_9.date()
    assert await ids(appointment_from=tuesday, appointment_to=tuesday) == {arrived.id}
    assert await ids(appointment_from=wednesday) == {booked.id}
    assert await ids(appointment_to=tuesday - timedelta(days=1)) == set()
    assert await ids(assigned="none") == {fresh.id, booked.id}
    assert await ids(assigned="me") == set()
    assert await ids(urgent=True, state=CaseState.NEW) == {fresh.id}

    page = await listing.list_cases(
        session=session,
        settings=settings,
        staff=anna,
        filters=CaseFilters(state=CaseState.CHECKED_IN),
    )
    (row,) = page.rows
    assert (row.name, row.assigned_to, row.helpdesk, row.urgent) == (
        "Carla Sala", "Luca", comune.name, True,
    )  # fmt: skip
    assert row.appointment_at == TUESDAY_9


async def test_case_workers_see_their_own_and_unassigned_cases(
    session: AsyncSession, settings: Settings
) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    luca = await make_staff(session, "luca")
    giulia = await make_staff(session, "giulia")
    admin = await make_staff(session, "root", Role.ADMIN)
    _a, free = await make_candidate(session, name="Anna Neri")
    _b, lucas = await make_candidate(session, name="Bruno Galli")
    _c, giulias = await make_candidate(session, name="Carla Sala")
    for case, worker in ((lucas, luca), (giulias, giulia)):
        await cases.assign_case(
            session=session, case_id=case.id, assignee_id=worker.id, staff=anna, now=NOW
        )
    assert set(await _ids(session, settings, member(luca))) == {free.id, lucas.id}
    assert set(await _ids(session, settings, member(giulia))) == {free.id, giulias.id}
    assert set(await _ids(session, settings, anna)) == {free.id, lucas.id, giulias.id}
    assert await _ids(session, settings, member(admin)) == []
    assert await _ids(session, settings, member(luca), assigned="me") == [lucas.id]
    # A search does not widen what a case worker sees.
    assert await _ids(session, settings, member(luca), text="Carla") == []


async def test_keyset_pagination_walks_every_case_once_both_ways(
    session: AsyncSession, settings: Settings
) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    made = []
    for n in range(62):
        # Groups of three share their opening time: the id breaks the tie.
        _c, case = await make_candidate(
            session, name=f"Persona Numero {n}", now=NOW + timedelta(minutes=n // 3)
        )
        made.append(case)
    expected = [c.id for c in sorted(made, key=lambda c: (c.opened_at, c.id), reverse=True)]

    pages = []
    page = await listing.list_cases(
        session=session, settings=settings, staff=anna, filters=CaseFilters()
    )
    assert page.previous_cursor is None
    pages.append([r.id for r in page.rows])
    while page.next_cursor:
        page = await listing.list_cases(
            session=session, settings=settings, staff=anna, filters=CaseFilters(),
            after=page.next_cursor,
        )  # fmt: skip
        pages.append([r.id for r in page.rows])
    assert [len(p) for p in pages] == [25, 25, 12]
    assert [i for p in pages for i in p] == expected

    back = []
    while page.previous_cursor:
        page = await listing.list_cases(
            session=session, settings=settings, staff=anna, filters=CaseFilters(),
            before=page.previous_cursor,
        )  # fmt: skip
        back.append([r.id for r in page.rows])
        assert page.next_cursor is not None
    assert back == [pages[1], pages[0]]

    # A name search walks its own index in the same order, page by page, both ways.
    searched, cursor = [], None
    while True:
        found = await listing.list_cases(
            session=session, settings=settings, staff=anna, filters=CaseFilters(text="persona"),
            limit=10, after=cursor,
        )  # fmt: skip
        searched.append([r.id for r in found.rows])
        if found.next_cursor is None:
            break
        cursor = found.next_cursor
    assert [i for p in searched for i in p] == expected
    assert [len(p) for p in searched] == [10] * 6 + [2]
    back = await listing.list_cases(
        session=session, settings=settings, staff=anna, filters=CaseFilters(text="persona"),
        limit=10, before=found.previous_cursor,
    )  # fmt: skip
    assert [r.id for r in back.rows] == searched[-2]

    made_for_dates = listing.encode_cursor(listing._BY_APPOINTMENT, NOW, made[0].id)
    for forged in (
        "nonsense", "o20261307000000000000.1", "'; DROP TABLE case_file; --", made_for_dates,
    ):  # fmt: skip
        with pytest.raises(InvalidCursor):
            await listing.list_cases(
                session=session, settings=settings, staff=anna, filters=CaseFilters(),
                after=forged,
            )  # fmt: skip


async def test_filtering_by_appointment_dates_orders_by_appointment(
    session: AsyncSession, settings: Settings
) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    helpdesk = await make_helpdesk(session, places=3)
    booked = []
    # Opened in one order, booked in the other.
    for n in range(7):
        citizen, case = await make_candidate(
            session, name=f"Persona {n}", now=NOW - timedelta(hours=n)
        )
        await book(
            session, settings, citizen, helpdesk, TUESDAY_9 + timedelta(minutes=30 * (n // 3))
        )
        booked.append(case)
    await make_candidate(session, name="Senza Appuntamento")
    expected = [c.id for c in sorted(booked, key=lambda c: (c.appointment_at, c.id))]
    filters = CaseFilters(appointment_from=TUESDAY_9.date(), appointment_to=TUESDAY_9.date())
    first = await listing.list_cases(
        session=session, settings=settings, staff=anna, filters=filters, limit=4
    )
    assert [r.id for r in first.rows] == expected[:4]
    assert first.next_cursor is not None and first.next_cursor.startswith("a")
    second = await listing.list_cases(
        session=session, settings=settings, staff=anna, filters=filters, limit=4,
        after=first.next_cursor,
    )  # fmt: skip
    assert [r.id for r in second.rows] == expected[4:]
    again = await listing.list_cases(
        session=session, settings=settings, staff=anna, filters=filters, limit=4,
        before=second.previous_cursor,
    )  # fmt: skip
    assert [r.id for r in again.rows] == expected[:4]
    named = await listing.list_cases(
        session=session, settings=settings, staff=anna, limit=4,
        filters=CaseFilters(text="persona", appointment_from=TUESDAY_9.date()),
    )  # fmt: skip
    assert [r.id for r in named.rows] == expected[:4]
    with pytest.raises(InvalidCursor):
        await listing.list_cases(
            session=session, settings=settings, staff=anna, filters=CaseFilters(),
            after=first.next_cursor,
        )  # fmt: skip


async def test_the_list_is_one_statement(database: Database, settings: Settings) -> None:
    async with database.transaction() as session:
        anna = member(await make_staff(session, "anna", Role.COORDINATORE))
        for n in range(30):
            await make_candidate(session, name=f"Persona {n}")
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with database.transaction(read_only=True) as session:
            page = await listing.list_cases(
                session=session, settings=settings, staff=anna,
                filters=CaseFilters(urgent=False, state=CaseState.NEW),
            )  # fmt: skip
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert len(page.rows) == 25
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


async def test_filters_from_the_query_string() -> None:
    parsed = listing.parse_filters(
        {"q": " Rossi ", "state": "booked", "urgent": "yes", "helpdesk": "3",
         "from": "2026-12-01", "to": "2026-12-31", "assigned": "me"}
    )  # fmt: skip
    assert parsed == CaseFilters(
        text="Rossi", state=CaseState.BOOKED, urgent=True, helpdesk_id=3,
        appointment_from=date(2026, 12, 1), appointment_to=date(2026, 12, 31), assigned="me",
    )  # fmt: skip
    assert listing.parse_filters({"state": "", "urgent": ""}) == CaseFilters()
    assert not CaseFilters().active and parsed.active
    with pytest.raises(InvalidInput) as caught:
        listing.parse_filters(
            {"state": "lost", "urgent": "maybe", "helpdesk": "x", "from": "2026-12-40",
             "to": "yesterday", "assigned": "boss"}
        )  # fmt: skip
    assert set(caught.value.errors) == {"state", "urgent", "helpdesk", "from", "to", "assigned"}
    with pytest.raises(InvalidInput) as reversed_range:
        listing.parse_filters({"from": "2026-12-31", "to": "2026-12-01"})
    assert set(reversed_range.value.errors) == {"to"}


async def test_closed_cases_are_listed_with_their_outcome(
    session: AsyncSession, settings: Settings
) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    helpdesk = await make_helpdesk(session)
    _c, case, _b = await checked_in(session, settings, helpdesk)
    await cases.record_outcome(
        session=session, case_id=case.id, outcome="referred", referred_to="CPI Melzo",
        staff=anna, now=TUESDAY_9,
    )  # fmt: skip
    page = await listing.list_cases(
        session=session, settings=settings, staff=anna, filters=CaseFilters(state=CaseState.CLOSED)
    )
    assert [(r.id, r.state, r.outcome) for r in page.rows] == [(case.id, "closed", "referred")]
    assert await session.scalar(select(Case.state).where(Case.id == case.id)) == "closed"
