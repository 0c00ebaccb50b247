"""Requests to confirm in a real browser: a coordinator confirms one and declines another."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from playwright.async_api import Page, expect

from shared.booking import availability, moderation
from shared.booking import service as booking
from shared.booking.models import Booking, Moderation
from shared.db import Database, utcnow
from shared.settings import Settings
from tests.dashboard.browser.conftest import open_every_day, register, sign_in


@dataclass(frozen=True)
class Requests:
    first: int
    second: int


async def make_requests(database: Database, settings: Settings) -> Requests:
    """Two citizens' requests at a moderated helpdesk, the first made an hour earlier."""
    now = utcnow()
    async with database.transaction() as session:
        helpdesk = await open_every_day(session, settings, name="Sportello su conferma")
        await moderation.set_moderated(
            session=session, helpdesk_id=helpdesk.id, moderated=True, actor="staff:test"
        )
        free = await availability.list_free_slots(
            session=session, settings=settings, helpdesk_id=helpdesk.id, now=now
        )
        made = []
        for n, (name, phone) in enumerate(
            [("Anna Galli", "333 123 4601"), ("Paolo Sala", "333 123 4602")]
        ):
            citizen = (await register(session, settings, name=name, phone=phone)).citizen
            request = await booking.book_slot(
                session=session, settings=settings, citizen_id=citizen.id,
                helpdesk_id=helpdesk.id, starts_at=free[24 + n].starts_at,
                actor=f"citizen:{citizen.id}", now=now - timedelta(hours=2 - n),
                by_citizen=True,
            )  # fmt: skip
            made.append(request.id)
    return Requests(*made)


async def _moderation(database: Database, booking_id: int) -> tuple[str | None, str]:
    async with database.transaction(read_only=True) as session:
        found = await session.get(Booking, booking_id)
        assert found is not None
        return found.moderation, found.state


async def test_a_coordinator_confirms_one_request_and_declines_another(
    page: Page, live_server: str, database: Database, settings: Settings
) -> None:
    requests = await make_requests(database, settings)
    await sign_in(page, "coordinatore")
    await page.goto("/bookings/requests")
    queue = page.get_by_role("table", name="Richieste in attesa di conferma, dalla più vecchia")
    rows = queue.get_by_role("row")
    # Oldest first, each with how long it waited and when it expires.
    await expect(rows.nth(1)).to_contain_text("Anna Galli")
    await expect(rows.nth(2)).to_contain_text("Paolo Sala")
    await expect(rows.nth(1)).to_contain_text("+39 333 123 4601")

    await page.get_by_role("button", name="Conferma la richiesta di Anna Galli").click()
    await expect(page).to_have_url(re.compile(r"/bookings/requests\?notice=confirmed_call$"))
    await expect(page.get_by_role("status")).to_contain_text("Richiesta confermata")
    await expect(queue).not_to_contain_text("Anna Galli")
    assert await _moderation(database, requests.first) == (Moderation.CONFIRMED.value, "booked")

    await page.get_by_role("link", name="Rifiuta… la richiesta di Paolo Sala").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Rifiuta una richiesta")
    # No reason: the form says so, and nothing changes.
    await page.get_by_role("button", name="Rifiuta la richiesta").click()
    reason = page.get_by_label("Motivo (lo leggerà il cittadino)")
    await expect(reason).to_have_attribute("aria-invalid", "true")
    assert await _moderation(database, requests.second) == (Moderation.PENDING.value, "booked")
    await reason.fill("Quel giorno lo sportello è chiuso per formazione.")
    await page.get_by_role("button", name="Rifiuta la richiesta").click()
    await expect(page).to_have_url(re.compile(r"/bookings/requests\?notice=declined_call$"))
    await expect(page.get_by_role("status")).to_contain_text("telefonale per avvisarla")
    await expect(page.get_by_text("Nessuna richiesta è in attesa di conferma.")).to_be_visible()
    assert await _moderation(database, requests.second) == (
        Moderation.DECLINED.value,
        "cancelled_by_staff",
    )
