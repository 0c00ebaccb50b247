"""The coordinators' requests page over HTTP: who may see and act, confirm, decline (with a
reason, optionally another time), refusals as messages, the recently expired."""

from __future__ import annotations

from datetime import timedelta

import httpx
from markupsafe import escape
from sqlalchemy import select

from shared.booking import availability, moderation
from shared.booking import service as booking
from shared.booking.models import Booking, Moderation, WaitlistEntry
from shared.db import Database, utcnow
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from tests.dashboard.conftest import login, page_csrf
from tests.factories import ROME, make_citizen, make_helpdesk, well_inside

EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)


async def _requests(
    database: Database, settings: Settings, count: int = 1, *, telegram: bool = True
) -> list[Booking]:
    """`count` pending requests at a moderated helpdesk open every day (on the real clock:
    the routes use it), the first made earliest."""
    now = utcnow()
    made = []
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(
            session,
            name="Sportello Moderato",
            weekdays=EVERY_DAY,
            places=5,
            valid_from=now.astimezone(ROME).date() - timedelta(days=1),
        )
        await moderation.set_moderated(
            session=session, helpdesk_id=helpdesk.id, moderated=True, actor="staff:test"
        )
        slots = well_inside(
            await availability.list_free_slots(
                session=session, settings=settings, helpdesk_id=helpdesk.id, now=now
            ),
            settings,
            now,
            margin=timedelta(hours=count + 6),
        )
        for n in range(count):
            citizen = await make_citizen(session, name=f"Cittadina {n}", telegram=telegram)
            request = await booking.book_slot(
                session=session, settings=settings, citizen_id=citizen.id,
                helpdesk_id=helpdesk.id, starts_at=slots[-1 - n].starts_at,
                actor=f"citizen:{citizen.id}", now=now - timedelta(hours=count - n),
                by_citizen=True,
            )  # fmt: skip
            made.append(request)
    return made


async def _booking(database: Database, booking_id: int) -> Booking:
    async with database.transaction(read_only=True) as session:
        found = await session.get(Booking, booking_id)
        assert found is not None
        return found


async def test_only_coordinators_see_and_moderate(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    [request] = await _requests(database, settings)
    for persona in ("operatore", "admin"):
        await login(client, persona)
        token = await page_csrf(client)
        assert (await client.get("/bookings/requests")).status_code == 403
        assert (await client.get(f"/bookings/{request.id}/decline")).status_code == 403
        confirm = await client.post(f"/bookings/{request.id}/confirm", data={"csrf_token": token})
        assert confirm.status_code == 403
        decline = await client.post(
            f"/bookings/{request.id}/decline", data={"csrf_token": token, "reason": "No"}
        )
        assert decline.status_code == 403
        await client.post("/logout", data={"csrf_token": token})
    assert (await _booking(database, request.id)).moderation == Moderation.PENDING.value
    await login(client, "coordinatore")
    # Without the CSRF token: refused, nothing changed.
    assert (await client.post(f"/bookings/{request.id}/confirm")).status_code == 403
    assert (await _booking(database, request.id)).moderation == Moderation.PENDING.value


async def test_the_page_lists_requests_oldest_first_and_confirms_one(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    older, _newer = await _requests(database, settings, 2)
    await login(client, "coordinatore")
    page = await client.get("/bookings/requests")
    assert page.status_code == 200
    assert page.text.index("Cittadina 0") < page.text.index("Cittadina 1")
    assert "In attesa di conferma" in page.text
    assert "/cases/" in page.text  # names open the case
    token = await page_csrf(client, "/bookings/requests")
    done = await client.post(f"/bookings/{older.id}/confirm", data={"csrf_token": token})
    assert done.status_code == 303
    assert done.headers["location"] == "/bookings/requests?notice=confirmed"
    assert (await _booking(database, older.id)).moderation == Moderation.CONFIRMED.value
    page = await client.get(done.headers["location"])
    assert "Richiesta confermata" in page.text
    assert "Cittadina 0" not in page.text and "Cittadina 1" in page.text
    # Confirmed again (another tab, a colleague): a clear message, not an error.
    again = await client.post(f"/bookings/{older.id}/confirm", data={"csrf_token": token})
    assert again.headers["location"] == "/bookings/requests?notice=not_pending"
    page = await client.get(again.headers["location"])
    assert "già stata gestita da qualcun altro" in page.text
    assert (
        await client.post("/bookings/999999/confirm", data={"csrf_token": token})
    ).status_code == 404


async def test_declining_needs_a_short_reason_and_keeps_what_was_typed(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    [request] = await _requests(database, settings)
    await login(client, "coordinatore")
    form = await client.get(f"/bookings/{request.id}/decline")
    assert form.status_code == 200 and "Motivo" in form.text
    token = await page_csrf(client, f"/bookings/{request.id}/decline")
    url = f"/bookings/{request.id}/decline"
    empty = await client.post(url, data={"csrf_token": token, "reason": "   "})
    assert empty.status_code == 400
    assert "Scrivi perché" in empty.text
    long = "Troppo lungo <b>" + "x" * 200
    too_long = await client.post(url, data={"csrf_token": token, "reason": long})
    assert too_long.status_code == 400
    assert str(escape(long)) in too_long.text  # kept as typed, escaped
    bad = await client.post(url, data={"csrf_token": token, "reason": "Chiuso", "propose": "ieri"})
    assert bad.status_code == 400 and "Chiuso" in bad.text
    assert (await _booking(database, request.id)).moderation == Moderation.PENDING.value

    done = await client.post(url, data={"csrf_token": token, "reason": "Sportello chiuso"})
    assert done.headers["location"] == "/bookings/requests?notice=declined"
    declined = await _booking(database, request.id)
    assert (declined.moderation, declined.state) == ("declined", "cancelled_by_staff")
    assert declined.cancel_reason == "Sportello chiuso"
    # The form of a request already handled says so.
    assert "non è più in attesa di conferma" in (await client.get(url)).text
    again = await client.post(url, data={"csrf_token": token, "reason": "Di nuovo"})
    assert again.headers["location"] == "/bookings/requests?notice=not_pending"


async def test_declining_can_propose_another_time(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    [request] = await _requests(database, settings)
    await login(client, "coordinatore")
    url = f"/bookings/{request.id}/decline"
    form = await client.get(url)
    token = await page_csrf(client, url)
    async with database.transaction(read_only=True) as session:
        free = await availability.list_free_slots(
            session=session, settings=settings, helpdesk_id=request.helpdesk_id
        )
    proposed = next(s.starts_at for s in free if s.starts_at != request.starts_at)
    assert proposed.isoformat() in form.text
    done = await client.post(
        url, data={"csrf_token": token, "reason": "Quel giorno no", "propose": proposed.isoformat()}
    )
    assert done.headers["location"] == "/bookings/requests?notice=declined_offered"
    async with database.transaction(read_only=True) as session:
        entry = await session.scalar(
            select(WaitlistEntry).where(WaitlistEntry.citizen_id == request.citizen_id)
        )
        assert entry is not None and entry.state == "offered"
        assert entry.offered_by == "staff:coordinatore"
        kinds = list(
            await session.scalars(
                select(OutboxMessage.kind)
                .where(OutboxMessage.citizen_id == request.citizen_id)
                .order_by(OutboxMessage.id)
            )
        )
    assert kinds.index("request_declined") < kinds.index("place_offer")


async def test_a_proposal_that_cant_be_held_changes_nothing(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    first, second = await _requests(database, settings, 2)
    await login(client, "coordinatore")
    url = f"/bookings/{first.id}/decline"
    token = await page_csrf(client, url)
    # The other request's place is taken (a helpdesk of 5 places: fill it first).
    async with database.transaction() as session:
        for _ in range(4):
            filler = await make_citizen(session, telegram=False)
            await booking.book_slot(
                session=session, settings=settings, citizen_id=filler.id,
                helpdesk_id=second.helpdesk_id, starts_at=second.starts_at, actor="staff:x",
            )  # fmt: skip
    refused = await client.post(
        url,
        data={"csrf_token": token, "reason": "No", "propose": second.starts_at.isoformat()},
    )
    assert refused.status_code == 409
    assert "Non è stato cambiato nulla" in refused.text
    assert (await _booking(database, first.id)).moderation == Moderation.PENDING.value


async def test_recently_expired_requests_are_listed_to_phone(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    [request] = await _requests(database, settings, telegram=False)
    async with database.transaction() as session:
        found = await session.get(Booking, request.id)
        assert found is not None and found.request_expires_at is not None
        found.request_expires_at = utcnow() - timedelta(days=1)
        await session.flush()
        assert await moderation.expire_requests(
            session=session, settings=settings, now=utcnow() - timedelta(hours=20)
        )
    await login(client, "coordinatore")
    page = await client.get("/bookings/requests")
    assert "Nessuna richiesta è in attesa di conferma." in page.text
    expired = page.text[page.text.index("Scadute negli ultimi") :]
    assert "Cittadina 0" in expired and "Niente Telegram" in expired


async def test_the_helpdesk_form_turns_moderation_on_and_off(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, name="Sportello Centro")
    await login(client, "coordinatore")
    url = f"/schedules/helpdesks/{helpdesk.id}"
    page = await client.get(url)
    assert 'name="moderated"' in page.text and " checked" not in page.text
    token = await page_csrf(client, url)
    fields = {"csrf_token": token, "name": "Sportello Centro", "address": "Via Roma 1"}
    saved = await client.post(url, data={**fields, "moderated": "1"})
    assert saved.status_code == 303
    async with database.transaction(read_only=True) as session:
        found = await session.get(type(helpdesk), helpdesk.id)
        assert found is not None and found.moderated
    page = await client.get(url)
    assert (
        'id="f-moderated" name="moderated" type="checkbox" value="1" class="form-check-input" checked'
        in page.text
    )
    # A form refused keeps the box as ticked.
    refused = await client.post(url, data={**fields, "address": "", "moderated": "1"})
    assert refused.status_code == 400 and 'form-check-input" checked' in refused.text
    await client.post(url, data=fields)
    async with database.transaction(read_only=True) as session:
        found = await session.get(type(helpdesk), helpdesk.id)
        assert found is not None and not found.moderated
    closures = await client.get(f"/schedules/helpdesks/{helpdesk.id}/closures")
    assert "Chiudi lo sportello in questi giorni</button>" in closures.text
