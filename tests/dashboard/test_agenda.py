"""Agenda over HTTP: day and week in Rome time, check-in, no-show, cancel, move, refusals."""

from __future__ import annotations

import re
from datetime import date, time, timedelta

import httpx
from markupsafe import escape
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import availability, hours
from shared.booking import service as booking
from shared.booking.models import Booking, Helpdesk
from shared.citizens.models import Citizen
from shared.db import Database, utcnow
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role
from tests.dashboard.conftest import PASSWORD, csrf_from, login, page_csrf
from tests.factories import ROME, make_citizen, make_helpdesk, rome
from tests.shared.cases.builders import TUESDAY_9, book, make_candidate

# Booked "in the past" at fixed dates: services take `now`, the routes use the real clock.
BOOKED_AT = rome(2026, 3, 20, 8)
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)


async def _book(
    session: AsyncSession,
    settings: Settings,
    citizen: Citizen,
    helpdesk: Helpdesk,
    starts_at: object,
    now: object = BOOKED_AT,
) -> Booking:
    return await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=starts_at, actor="test", now=now,  # type: ignore[arg-type]
    )  # fmt: skip


async def _upcoming_helpdesk(session: AsyncSession, *, places: int = 2) -> Helpdesk:
    """Open every day from yesterday on, so slots a few days ahead are free for real."""
    yesterday = utcnow().astimezone(ROME).date() - timedelta(days=1)
    return await make_helpdesk(
        session, name="Sportello Futuro", weekdays=EVERY_DAY, places=places, valid_from=yesterday
    )


async def _future_slots(session: AsyncSession, settings: Settings, helpdesk: Helpdesk) -> list:  # type: ignore[type-arg]
    later = utcnow() + timedelta(days=3)
    slots = await availability.list_free_slots(
        session=session, settings=settings, helpdesk_id=helpdesk.id
    )
    return [s for s in slots if s.starts_at >= later]


async def _state(database: Database, booking_id: int) -> str:
    async with database.transaction() as session:
        found = await session.get(Booking, booking_id)
        assert found is not None
        return found.state


async def _outbox(database: Database, **where: object) -> list[OutboxMessage]:
    async with database.transaction() as session:
        query = select(OutboxMessage).filter_by(**where).order_by(OutboxMessage.id)
        return list((await session.scalars(query)).all())


async def _outbox_count(database: Database) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


# --- what the agenda shows ---------------------------------------------------------


async def test_day_and_week_show_the_right_bookings_in_rome_time(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        centre = await make_helpdesk(session, name="Sportello Centro", places=2)
        other = await make_helpdesk(session, name="Sportello Villa Fiorita", places=2)
        # Tuesday 24 March, 00:00-00:30 in Rome is Monday 23:00 UTC.
        await hours.add_extra_opening(
            session=session, helpdesk_id=centre.id, day=date(2026, 3, 24), opens_at=time(0),
            closes_at=time(0, 30), slot_minutes=30, places=1, actor="test",
        )  # fmt: skip
        anna = await make_citizen(session, name="Anna Lunedì")
        bruno = await make_citizen(session, name="Bruno Mezzanotte", urgent=True)
        carla = await make_citizen(session, name="Carla Legale")
        dora = await make_citizen(session, name="Dora Altrove")
        a = await _book(session, settings, anna, centre, rome(2026, 3, 23, 9))
        b = await _book(session, settings, bruno, centre, rome(2026, 3, 24, 0))
        # Monday 30 March is after the switch to summer time: 09:00 in Rome is 07:00 UTC.
        c = await _book(session, settings, carla, centre, rome(2026, 3, 30, 9))
        await _book(session, settings, dora, other, rome(2026, 3, 23, 10))
        centre_id = centre.id
    await login(client, "operatore")

    monday = (await client.get("/agenda?view=day&day=2026-03-23")).text
    assert "Anna Lunedì" in monday
    assert "Dora Altrove" in monday
    assert "Bruno Mezzanotte" not in monday
    assert "Carla Legale" not in monday
    # The name opens the citizen's case (issue 12: it opened a case search).
    assert re.search(r'href="/cases/\d+">Anna Lunedì</a>', monday)
    assert a.code in monday
    assert "Sportello Centro" in monday
    assert "Sportello Villa Fiorita" in monday

    tuesday = (await client.get("/agenda?view=day&day=2026-03-24")).text
    row = tuesday[tuesday.index(f'id="booking-{b.id}"') :]
    row = row[: row.index("</tr>")]
    assert ">00:00</time>" in row
    assert "Caso urgente" in row
    assert "it-warning-circle" in row  # an icon beside the text, not colour alone
    assert "Anna Lunedì" not in tuesday

    after_dst = (await client.get("/agenda?view=day&day=2026-03-30")).text
    row = after_dst[after_dst.index(f'id="booking-{c.id}"') :]
    assert ">09:00</time>" in row[: row.index("</tr>")]

    week = (await client.get("/agenda?view=week&day=2026-03-25")).text
    assert "Anna Lunedì" in week
    assert "Bruno Mezzanotte" in week
    assert "Carla Legale" not in week
    assert "lunedì 23 marzo 2026" in week
    assert "domenica 29 marzo 2026" in week

    one_place = (await client.get(f"/agenda?view=week&day=2026-03-25&helpdesk={centre_id}")).text
    assert "Anna Lunedì" in one_place
    assert "Dora Altrove" not in one_place
    assert "Sportello Villa Fiorita" not in one_place.split("<main", 1)[1].split("</form>", 1)[1]


async def test_default_is_today_and_bad_parameters_are_refused(client: httpx.AsyncClient) -> None:
    await login(client, "coordinatore")
    page = await client.get("/agenda")
    assert page.status_code == 200
    today = utcnow().astimezone(ROME).date()
    assert f'value="{today.isoformat()}"' in page.text
    assert "Non ci sono ancora sportelli" in page.text
    assert (await client.get("/agenda?day=31-12-2026")).status_code == 400
    assert (await client.get("/agenda?view=month")).status_code == 400
    assert (await client.get("/agenda?helpdesk=abc")).status_code == 400
    assert (await client.get("/agenda?helpdesk=999")).status_code == 404


async def test_agenda_page_costs_at_most_five_sql_statements(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        for n, name in enumerate(("Sportello Uno", "Sportello Due", "Sportello Tre")):
            helpdesk = await make_helpdesk(session, name=name, places=3)
            for k in range(6):
                citizen = await make_citizen(session, name=f"Persona {n}-{k}", urgent=k % 2 == 0)
                await _book(
                    session, settings, citizen, helpdesk, rome(2026, 3, 23 + k % 5, 9 + k % 3)
                )
    await login(client, "operatore")
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if (
            not statement.lstrip()
            .upper()
            .startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"))
        ):
            statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        page = await client.get("/agenda?view=week&day=2026-03-23")
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert page.status_code == 200
    assert page.text.count('id="booking-') == 18
    assert len(statements) <= 5, "\n\n".join(statements)


async def test_a_hostile_citizen_name_renders_inert(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    hostile = '<script>alert(1)</script>" onmouseover="alert(2)'
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        citizen = await make_citizen(session, name=hostile)
        entry = await _book(session, settings, citizen, helpdesk, rome(2026, 3, 23, 9))
    await login(client, "operatore")
    for path in (
        "/agenda?day=2026-03-23",
        f"/agenda/bookings/{entry.id}/cancel",
        f"/agenda/bookings/{entry.id}/move",
    ):
        page = (await client.get(path)).text
        assert "<script>alert(1)</script>" not in page, path
        assert '" onmouseover="alert(2)' not in page, path
        assert str(escape(hostile)) in page, path


# --- check-in and no-show ----------------------------------------------------------


async def test_check_in_and_no_show_by_plain_form(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, places=2)
        came = await _book(
            session, settings, await make_citizen(session), helpdesk, rome(2026, 3, 23, 9)
        )
        away = await _book(
            session, settings, await make_citizen(session, name="Ugo Assente"), helpdesk,
            rome(2026, 3, 23, 9, 30),
        )  # fmt: skip
    await login(client, "operatore")
    back = "/agenda?view=day&day=2026-03-23"
    token = await page_csrf(client, back)

    answer = await client.post(
        f"/agenda/bookings/{came.id}/attended", data={"csrf_token": token, "back": back}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == back + "&notice=attended"
    assert await _state(database, came.id) == "attended"
    # Its reminders are withdrawn: nothing is sent about a finished appointment.
    reminders = await _outbox(database, subject=f"booking:{came.id}")
    assert reminders
    assert {m.state for m in reminders} == {"cancelled"}
    page = (await client.get(answer.headers["location"])).text
    assert "Presenza registrata." in page

    answer = await client.post(
        f"/agenda/bookings/{away.id}/no-show", data={"csrf_token": token, "back": back}
    )
    assert answer.status_code == 303
    assert await _state(database, away.id) == "no_show"
    offers = await _outbox(database, kind="rebook_after_no_show")
    assert [m.payload["booking_id"] for m in offers] == [away.id]
    assert offers[0].state == "pending"


async def test_check_in_by_htmx_answers_with_the_row(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        entry = await _book(
            session, settings, await make_citizen(session), helpdesk, rome(2026, 3, 23, 9)
        )
    await login(client, "operatore")
    token = await page_csrf(client, "/agenda?day=2026-03-23")
    answer = await client.post(
        f"/agenda/bookings/{entry.id}/attended",
        data={"back": "/agenda?day=2026-03-23"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith(f'<tr id="booking-{entry.id}"')
    assert "Presente" in answer.text
    assert "Presenza registrata." in answer.text
    assert "/attended" not in answer.text  # no more check-in button
    assert await _state(database, entry.id) == "attended"


async def test_refused_transitions_show_a_message_and_change_nothing(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await _upcoming_helpdesk(session)
        slot = (await _future_slots(session, settings, helpdesk))[0]
        future = await _book(
            session, settings, await make_citizen(session), helpdesk, slot.starts_at, utcnow()
        )
        past_helpdesk = await make_helpdesk(session, name="Sportello Passato")
        done = await _book(
            session, settings, await make_citizen(session), past_helpdesk, rome(2026, 3, 23, 9)
        )
        await booking.mark_attended(session=session, booking_id=done.id, actor="test")
    await login(client, "operatore")
    token = await page_csrf(client, "/agenda")
    before = await _outbox_count(database)

    answer = await client.post(
        f"/agenda/bookings/{future.id}/no-show", data={"csrf_token": token, "back": "/agenda"}
    )
    assert answer.headers["location"] == "/agenda?notice=no_show_early"
    page = (await client.get(answer.headers["location"])).text
    assert "Un’assenza si può registrare solo dopo l’inizio dell’appuntamento." in page
    assert "Non è stato cambiato nulla." in page

    answer = await client.post(
        f"/agenda/bookings/{future.id}/attended", data={"csrf_token": token, "back": "/agenda"}
    )
    assert answer.headers["location"] == "/agenda?notice=check_in_early"
    assert await _state(database, future.id) == "booked"

    answer = await client.post(
        f"/agenda/bookings/{done.id}/no-show",
        data={"back": "/agenda"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert answer.status_code == 200
    assert "non è più attiva" in answer.text
    assert await _state(database, done.id) == "attended"

    cancel = await client.post(
        f"/agenda/bookings/{done.id}/cancel",
        data={"csrf_token": token, "reason": "Sportello chiuso", "back": "/agenda"},
    )
    assert cancel.status_code == 409
    assert "non è più attiva" in cancel.text
    assert await _state(database, done.id) == "attended"
    assert await _outbox_count(database) == before

    missing = await client.post(
        "/agenda/bookings/999999/attended", data={"csrf_token": token, "back": "/agenda"}
    )
    assert missing.status_code == 404


async def test_back_never_leaves_the_site(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        entry = await _book(
            session, settings, await make_citizen(session), helpdesk, rome(2026, 3, 23, 9)
        )
    await login(client, "operatore")
    token = await page_csrf(client, "/agenda")
    answer = await client.post(
        f"/agenda/bookings/{entry.id}/attended",
        data={"csrf_token": token, "back": "//evil.example/x"},
    )
    assert answer.headers["location"] == "/agenda?notice=attended"


# --- cancel and move ---------------------------------------------------------------


async def test_cancel_with_a_reason_tells_the_citizen(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await _upcoming_helpdesk(session)
        slot = (await _future_slots(session, settings, helpdesk))[0]
        entry = await _book(
            session, settings, await make_citizen(session), helpdesk, slot.starts_at, utcnow()
        )
        walk_in = await make_citizen(session, name="Piero Sportello", telegram=False)
        other = await _book(session, settings, walk_in, helpdesk, slot.starts_at, utcnow())
    await login(client, "operatore")
    form = await client.get(f"/agenda/bookings/{entry.id}/cancel?back=/agenda%3Fday%3D2026-03-23")
    assert form.status_code == 200
    assert entry.code in form.text
    token = csrf_from(form.text)

    empty = await client.post(
        f"/agenda/bookings/{entry.id}/cancel",
        data={"csrf_token": token, "reason": "  ", "back": "/agenda"},
    )
    assert empty.status_code == 400
    assert "Scrivi perché la prenotazione viene annullata." in empty.text
    assert await _state(database, entry.id) == "booked"

    done = await client.post(
        f"/agenda/bookings/{entry.id}/cancel",
        data={"csrf_token": token, "reason": "Operatrice malata", "back": "/agenda?day=2026-03-23"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/agenda?day=2026-03-23&notice=cancelled"
    async with database.transaction() as session:
        cancelled = await session.get(Booking, entry.id)
        assert cancelled is not None
        assert cancelled.state == "cancelled_by_staff"
        assert cancelled.cancel_reason == "Operatrice malata"
    told = await _outbox(database, kind="booking_cancelled")
    assert [(m.citizen_id, m.payload["booking_id"], m.state) for m in told] == [
        (entry.citizen_id, entry.id, "pending")
    ]

    # Without a Telegram chat nobody can be messaged: staff are asked to phone.
    done = await client.post(
        f"/agenda/bookings/{other.id}/cancel",
        data={"csrf_token": token, "reason": "Operatrice malata", "back": "/agenda"},
    )
    assert done.headers["location"] == "/agenda?notice=cancelled_call"
    assert "telefonagli" in (await client.get(done.headers["location"])).text


async def test_move_to_a_free_slot_tells_the_citizen(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await _upcoming_helpdesk(session, places=1)
        first, taken, free = (await _future_slots(session, settings, helpdesk))[:3]
        entry = await _book(
            session, settings, await make_citizen(session), helpdesk, first.starts_at, utcnow()
        )
        await _book(
            session,
            settings,
            await make_citizen(session, name="Altra Persona"),
            helpdesk,
            taken.starts_at,
            utcnow(),
        )
        helpdesk_id = helpdesk.id
    await login(client, "operatore")
    start = free.starts_at.astimezone(ROME).date().isoformat()
    page = await client.get(f"/agenda/bookings/{entry.id}/move?start={start}&back=/agenda")
    assert page.status_code == 200
    assert f'value="{free.starts_at.isoformat()}"' in page.text
    assert f'value="{taken.starts_at.isoformat()}"' not in page.text
    token = csrf_from(page.text)

    garbage = await client.post(
        f"/agenda/bookings/{entry.id}/move",
        data={
            "csrf_token": token,
            "helpdesk_id": str(helpdesk_id),
            "starts_at": "tomorrow",
            "back": "/agenda",
        },
    )
    assert garbage.status_code == 400
    assert "Scegli uno degli orari liberi." in garbage.text

    lost = await client.post(
        f"/agenda/bookings/{entry.id}/move",
        data={
            "csrf_token": token,
            "helpdesk_id": str(helpdesk_id),
            "starts_at": taken.starts_at.isoformat(),
            "back": "/agenda",
        },
    )
    assert lost.status_code == 409
    assert "Quel posto è appena stato preso" in lost.text
    assert await _state(database, entry.id) == "booked"
    assert await _outbox(database, kind="booking_moved") == []

    moved = await client.post(
        f"/agenda/bookings/{entry.id}/move",
        data={
            "csrf_token": token,
            "helpdesk_id": str(helpdesk_id),
            "starts_at": free.starts_at.isoformat(),
            "back": "/agenda",
        },
    )
    assert moved.status_code == 303
    assert moved.headers["location"] == "/agenda?notice=moved"
    async with database.transaction() as session:
        old = await session.get(Booking, entry.id)
        assert old is not None
        assert (old.state, old.cancel_reason) == ("cancelled_by_staff", "moved")
        new = await session.scalar(select(Booking).where(Booking.moved_from_id == entry.id))
        assert new is not None
        assert new.state == "booked"
        assert new.starts_at == free.starts_at
        new_id = new.id
    told = await _outbox(database, kind="booking_moved")
    assert [(m.payload["booking_id"], m.state) for m in told] == [(new_id, "pending")]
    assert await _outbox(database, kind="booking_cancelled") == []

    again = await client.post(
        f"/agenda/bookings/{entry.id}/move",
        data={
            "csrf_token": token,
            "helpdesk_id": str(helpdesk_id),
            "starts_at": first.starts_at.isoformat(),
            "back": "/agenda",
        },
    )
    assert again.status_code == 409
    assert "non è più attiva" in again.text


async def test_move_page_offers_other_helpdesks(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await _upcoming_helpdesk(session)
        slot = (await _future_slots(session, settings, helpdesk))[0]
        entry = await _book(
            session, settings, await make_citizen(session), helpdesk, slot.starts_at, utcnow()
        )
        elsewhere = await make_helpdesk(
            session, name="Sportello Nord", weekdays=EVERY_DAY, opens_at=time(14), closes_at=time(15),
            valid_from=utcnow().astimezone(ROME).date(),
        )  # fmt: skip
    await login(client, "coordinatore")
    page = (await client.get(f"/agenda/bookings/{entry.id}/move?helpdesk={elsewhere.id}")).text
    assert "Sportello Nord" in page
    times = re.findall(r'for="slot-\d+">(\d\d:\d\d)', page)
    assert times
    assert set(times) <= {"14:00", "14:30"}
    # A booking at a helpdesk that stopped taking bookings is offered the open ones.
    async with database.transaction() as session:
        await hours.set_helpdesk_active(
            session=session, helpdesk_id=helpdesk.id, active=False, actor="test"
        )
    page = (await client.get(f"/agenda/bookings/{entry.id}/move")).text
    assert f'name="helpdesk_id" value="{elsewhere.id}"' in page
    assert set(re.findall(r'for="slot-\d+">(\d\d:\d\d)', page)) <= {"14:00", "14:30"}
    assert (await client.get("/agenda/bookings/999999/move")).status_code == 404
    assert (await client.get("/agenda/bookings/99999999999/move")).status_code == 400


# --- how the agenda reads for a case worker (issue 12, points 3 and 5) ------------------------


async def test_names_open_the_case_for_whoever_may_read_it_and_requests_read_as_such(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, places=3)
        mine, my_case = await make_candidate(session, name="Maria Rossi", urgent=True)
        theirs, their_case = await make_candidate(session, name="Paolo Neri")
        colleague = await staff.add_user(
            session=session, username="collega", password=PASSWORD, role=Role.OPERATORE
        )
        their_case.assigned_to_id = colleague.id
        for citizen in (mine, theirs):
            await book(session, settings, citizen, helpdesk)
        request = await book(
            session, settings, await make_citizen(session, name="Anna Bianchi"), helpdesk
        )
        request.moderation = "pending"
    await login(client, "operatore")
    page = await client.get("/agenda", params={"day": TUESDAY_9.date().isoformat()})
    assert page.status_code == 200
    html = page.text
    assert f'href="/cases/{my_case.id}">Maria Rossi</a>' in html
    assert f'href="/cases/{their_case.id}"' not in html and "Paolo Neri" in html
    assert "/cases?q=" not in html
    # A request nobody confirmed is not "booked"; an urgent appointment says so in words.
    row = re.search(rf'<tr id="booking-{request.id}".*?</tr>', html, re.DOTALL)
    assert row is not None and "Richiesta da confermare" in row.group(0)
    urgent = re.search(
        r'<tr id="booking-\d+" role="row" class="agenda-urgent">.*?</tr>', html, re.DOTALL
    )
    assert urgent is not None and "Maria Rossi" in urgent.group(0)
    assert "Caso urgente" in urgent.group(0)
    # A coordinator opens every case.
    await login(client, "coordinatore")
    page = await client.get("/agenda", params={"day": TUESDAY_9.date().isoformat()})
    assert f'href="/cases/{their_case.id}">Paolo Neri</a>' in page.text


async def test_an_htmx_check_in_updates_the_still_to_do_count(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, places=3)
        made = [
            await _book(
                session,
                settings,
                await make_citizen(session, name=f"N{n}"),
                helpdesk,
                rome(2026, 3, 23, 9),
            )
            for n in range(3)
        ]
    await login(client, "operatore")
    back = "/agenda?view=day&day=2026-03-23"
    token = await page_csrf(client, back)
    answer = await client.post(
        f"/agenda/bookings/{made[0].id}/no-show",
        data={"csrf_token": token, "back": back},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    total = re.search(r'<p id="agenda-total"[^>]*hx-swap-oob="true"[^>]*>([^<]*)</p>', answer.text)
    assert total is not None and total.group(1).strip().endswith(": 2")
