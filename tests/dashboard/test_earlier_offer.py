"""A coordinator offers an urgent citizen an earlier place over HTTP: who may, what the
page lists, the offer held and shown with its expiry, refusals as messages."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from shared.booking import availability
from shared.booking import service as booking
from shared.booking.models import Booking, Slot, WaitlistEntry
from shared.db import Database, utcnow
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from tests.dashboard.conftest import login, page_csrf
from tests.factories import ROME, make_citizen, make_helpdesk, well_inside

EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)


async def _booked(
    database: Database, settings: Settings, *, urgent: bool = True, telegram: bool = True
) -> tuple[Booking, str]:
    """A citizen booked on a late free slot of a helpdesk open every day (on the real
    clock: the routes use it); with the "helpdesk|start" of an earlier free place, both well
    inside the booking window."""
    now = utcnow()
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(
            session, name="Sportello Comune", weekdays=EVERY_DAY, places=2,
            valid_from=now.astimezone(ROME).date() - timedelta(days=1),
        )  # fmt: skip
        slots = well_inside(
            await availability.list_free_slots(
                session=session, settings=settings, helpdesk_id=helpdesk.id, now=now
            ),
            settings,
            now,
        )
        citizen = await make_citizen(session, urgent=urgent, name="Anna Bianchi", telegram=telegram)
        made = await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
            starts_at=slots[-1].starts_at, actor="staff:test", now=now,
        )  # fmt: skip
        return made, f"{helpdesk.id}|{slots[0].starts_at.isoformat()}"


async def test_only_coordinators_may_offer(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    made, earliest = await _booked(database, settings)
    for persona in ("operatore", "admin"):
        await login(client, persona)
        token = await page_csrf(client)
        assert (await client.get(f"/bookings/{made.id}/earlier")).status_code == 403
        offer = await client.post(
            f"/bookings/{made.id}/earlier", data={"csrf_token": token, "slot": earliest}
        )
        assert offer.status_code == 403
        await client.post("/logout", data={"csrf_token": token})
    await login(client, "coordinatore")
    # No CSRF token: refused.
    assert (
        await client.post(f"/bookings/{made.id}/earlier", data={"slot": earliest})
    ).status_code == 403
    async with database.transaction(read_only=True) as session:
        assert (await session.scalars(select(WaitlistEntry))).all() == []


async def test_the_coordinator_offers_an_earlier_place_and_sees_it_open(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    made, earliest = await _booked(database, settings)
    await login(client, "coordinatore")
    page = await client.get(f"/bookings/{made.id}/earlier")
    assert page.status_code == 200
    assert "Offri un posto prima" in page.text and "Anna Bianchi" in page.text
    assert f'value="{earliest}"' in page.text
    token = await page_csrf(client, f"/bookings/{made.id}/earlier")
    done = await client.post(
        f"/bookings/{made.id}/earlier", data={"csrf_token": token, "slot": earliest}
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/bookings/{made.id}/earlier?notice=offered"
    shown = await client.get(done.headers["location"])
    assert "Posto proposto e tenuto da parte" in shown.text
    assert "Proposta aperta" in shown.text
    assert 'name="slot"' not in shown.text  # one offer at a time
    async with database.transaction(read_only=True) as session:
        [entry] = (await session.scalars(select(WaitlistEntry))).all()
        assert (entry.state, entry.replaces_booking_id, entry.offered_by) == (
            "offered", made.id, "staff:coordinatore",
        )  # fmt: skip
        assert await session.scalar(select(Slot.taken).where(Slot.id == entry.offered_slot_id)) == 1
        kinds = (await session.scalars(select(OutboxMessage.kind))).all()
        assert "place_offer" in kinds
    # A second offer while this one is open: a message, nothing changed.
    again = await client.post(
        f"/bookings/{made.id}/earlier", data={"csrf_token": token, "slot": earliest}
    )
    assert again.status_code == 409


async def test_a_citizen_not_urgent_is_refused_with_a_message(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    made, earliest = await _booked(database, settings, urgent=False)
    await login(client, "coordinatore")
    page = await client.get(f"/bookings/{made.id}/earlier")
    assert page.status_code == 409
    assert "solo ai casi urgenti" in page.text
    token = await page_csrf(client)
    refused = await client.post(
        f"/bookings/{made.id}/earlier", data={"csrf_token": token, "slot": earliest}
    )
    assert refused.status_code == 409 and "solo ai casi urgenti" in refused.text
    async with database.transaction(read_only=True) as session:
        assert (await session.scalars(select(WaitlistEntry))).all() == []


async def test_bad_choices_keep_the_page_and_change_nothing(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    made, earliest = await _booked(database, settings)
    await login(client, "coordinatore")
    token = await page_csrf(client)
    helpdesk_id = earliest.split("|")[0]
    for slot, status in (
        ("", 400),
        ("nonsense", 400),
        (f"{helpdesk_id}|2000-01-01T09:00:00+00:00", 409),
        (f"{helpdesk_id}|{made.starts_at.isoformat()}", 409),  # not earlier
    ):
        answer = await client.post(
            f"/bookings/{made.id}/earlier", data={"csrf_token": token, "slot": slot}
        )
        assert answer.status_code == status, slot
        assert "Non è stato cambiato nulla" in answer.text
    assert (await client.get("/bookings/999999/earlier")).status_code == 404
    async with database.transaction(read_only=True) as session:
        assert (await session.scalars(select(WaitlistEntry))).all() == []
