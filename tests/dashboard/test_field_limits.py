"""Every form knows its fields' limits, and a value past one comes back as the form.

The limits are the services' own: the form shows them (`maxlength`, `min`, `max`), and a
value beyond one is answered with the form again, a message next to that field and every
other value as it was typed, never the bare "invalid request" page.
"""

from __future__ import annotations

from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
from sqlalchemy import func, select

from shared.booking import availability, hours
from shared.booking import service as booking
from shared.booking.models import Booking, Closure, ExtraOpening, Helpdesk, OpeningRule
from shared.cases import service as cases
from shared.cases.models import Case
from shared.db import Database, utcnow
from shared.settings import Settings
from shared.staff import passwords
from shared.staff.models import StaffUser
from tests.dashboard.conftest import csrf_from, login, page_csrf
from tests.factories import ROME, make_citizen, make_helpdesk
from tests.shared.cases.builders import checked_in, make_candidate

EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
HUGE = "9" * 25


class _Fields(HTMLParser):
    """The attributes of each form control by id, and the text of each textarea."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.attrs: dict[str, dict[str, str]] = {}
        self.text: dict[str, str] = {}
        self._in: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "id" in found:
            self.attrs[found["id"]] = found
        if tag == "textarea":
            self._in = found.get("id")
            self.text[self._in or ""] = ""
        if tag == "div" and found.get("id", "").startswith("e-"):
            self._in = found["id"]
            self.text[self._in] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("textarea", "div"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.text[self._in] += data


def attribute(page: str, field: str, name: str) -> str | None:
    return _Fields(page).attrs[f"f-{field}"].get(name)


def value(page: str, field: str) -> str:
    fields = _Fields(page)
    if f"f-{field}" in fields.text:
        return fields.text[f"f-{field}"]
    return fields.attrs[f"f-{field}"].get("value", "")


def error(page: str, field: str) -> str:
    return _Fields(page).text.get(f"e-{field}", "").strip()


def _today() -> date:
    return utcnow().astimezone(ROME).date()


async def _count(database: Database, column: Any) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count(column))) or 0)


# --- agenda ----------------------------------------------------------------------------


async def test_a_long_cancellation_reason_comes_back_with_the_form(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(
            session, weekdays=EVERY_DAY, valid_from=_today() - timedelta(days=1)
        )
        citizen = await make_citizen(session)
        slot = (
            await availability.list_free_slots(
                session=session, settings=settings, helpdesk_id=helpdesk.id
            )
        )[-1]
        made = await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id,
            helpdesk_id=helpdesk.id, starts_at=slot.starts_at, actor="test",
        )  # fmt: skip
    await login(client, "operatore")
    form = await client.get(f"/agenda/bookings/{made.id}/cancel?back=/agenda")
    assert attribute(form.text, "reason", "maxlength") == "200"

    reason = "Lo sportello resta chiuso " + "x" * 224
    refused = await client.post(
        f"/agenda/bookings/{made.id}/cancel",
        data={"csrf_token": csrf_from(form.text), "reason": reason, "back": "/agenda"},
    )
    assert refused.status_code == 400
    assert error(refused.text, "reason") == "Il testo è troppo lungo: al massimo 200 caratteri."
    assert value(refused.text, "reason") == reason
    async with database.transaction() as session:
        kept = await session.get(Booking, made.id)
        assert kept is not None and kept.state == "booked"


async def test_the_date_fields_know_the_days_we_accept(client: httpx.AsyncClient) -> None:
    await login(client, "operatore")
    page = await client.get("/agenda")
    assert (attribute(page.text, "day", "min"), attribute(page.text, "day", "max")) == (
        "1900-01-01",
        "2200-12-31",
    )


# --- schedules -------------------------------------------------------------------------


async def _coordinator(client: httpx.AsyncClient, path: str) -> tuple[str, str]:
    await login(client, "coordinatore")
    page = await client.get(path)
    assert page.status_code == 200
    return csrf_from(page.text), page.text


async def test_helpdesk_texts_past_their_limits_come_back_with_the_form(
    client: httpx.AsyncClient, database: Database
) -> None:
    token, page = await _coordinator(client, "/schedules")
    assert attribute(page, "name", "maxlength") == "120"
    assert attribute(page, "address", "maxlength") == "200"
    assert attribute(page, "directions_it", "maxlength") == "2000"
    assert attribute(page, "directions_en", "maxlength") == "2000"
    long_name = "Sportello " + "n" * 111
    refused = await client.post(
        "/schedules/helpdesks",
        data={
            "csrf_token": token,
            "name": long_name,
            "address": "Via Roma 1",
            "directions_it": "Primo piano",
            "directions_en": "First floor",
        },
    )
    assert refused.status_code == 400
    assert error(refused.text, "name") == "Il testo è troppo lungo: al massimo 120 caratteri."
    assert value(refused.text, "name") == long_name
    assert value(refused.text, "address") == "Via Roma 1"
    assert value(refused.text, "directions_it") == "Primo piano"
    assert value(refused.text, "directions_en") == "First floor"
    assert await _count(database, Helpdesk.id) == 0

    far = await client.post(
        "/schedules/helpdesks",
        data={"csrf_token": token, "name": "Centro", "address": "Via Roma 1 " + "a" * 300},
    )
    assert far.status_code == 400
    assert error(far.text, "address") == "Il testo è troppo lungo: al massimo 200 caratteri."
    assert value(far.text, "name") == "Centro"

    long_english = "Second floor " + "e" * hours.MAX_DIRECTIONS
    wordy = await client.post(
        "/schedules/helpdesks",
        data={
            "csrf_token": token,
            "name": "Centro",
            "address": "Via Roma 1",
            "directions_it": "Secondo piano",
            "directions_en": long_english,
        },
    )
    assert wordy.status_code == 400
    assert error(wordy.text, "directions_en") == (
        "Il testo è troppo lungo: al massimo 2000 caratteri."
    )
    assert error(wordy.text, "directions_it") == ""
    assert value(wordy.text, "directions_en") == long_english
    assert value(wordy.text, "directions_it") == "Secondo piano"
    assert await _count(database, Helpdesk.id) == 0


async def test_out_of_range_numbers_of_weekly_hours_come_back_with_the_form(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, weekdays=(0,))
    token, page = await _coordinator(client, f"/schedules/helpdesks/{helpdesk.id}/hours")
    assert (attribute(page, "slot_minutes", "min"), attribute(page, "slot_minutes", "max")) == (
        str(hours.MIN_SLOT_MINUTES),
        str(hours.MAX_SLOT_MINUTES),
    )
    assert (attribute(page, "places", "min"), attribute(page, "places", "max")) == (
        "1",
        str(hours.MAX_PLACES),
    )
    assert attribute(page, "valid_from", "max") == "2200-12-31"
    good = {
        "csrf_token": token, "weekday": "2", "opens_at": "14:00", "closes_at": "17:00",
        "slot_minutes": "45", "places": "2", "valid_from": "2026-02-01", "valid_until": "",
    }  # fmt: skip
    for field, message in (
        ("slot_minutes", "Un turno dura tra 5 e 480 minuti."),
        ("places", "Un turno ha tra 1 e 100 posti."),
    ):
        refused = await client.post(
            f"/schedules/helpdesks/{helpdesk.id}/hours", data={**good, field: HUGE}
        )
        assert refused.status_code == 400, field
        assert error(refused.text, field) == message
        assert value(refused.text, field) == HUGE
        kept = {name: good[name] for name in ("opens_at", "closes_at", "valid_from")}
        assert {name: value(refused.text, name) for name in kept} == kept
    far = await client.post(
        f"/schedules/helpdesks/{helpdesk.id}/hours", data={**good, "valid_until": "9999-12-31"}
    )
    assert far.status_code == 400
    assert error(far.text, "valid_until") == "Scegli una data tra il 1900 e il 2200."
    assert value(far.text, "valid_until") == "9999-12-31"
    assert await _count(database, OpeningRule.id) == 1


async def test_a_long_closure_reason_and_extra_opening_values_come_back_with_the_form(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
    path = f"/schedules/helpdesks/{helpdesk.id}/closures"
    token, page = await _coordinator(client, path)
    assert attribute(page, "closure_reason", "maxlength") == "200"
    assert attribute(page, "extra_note", "maxlength") == "200"
    assert attribute(page, "extra_places", "max") == "100"
    assert attribute(page, "extra_slot_minutes", "max") == "480"
    day = (_today() + timedelta(days=30)).isoformat()

    reason = "Formazione del personale " + "r" * 275
    refused = await client.post(
        f"{path}",
        data={
            "csrf_token": token,
            "closure_day": day,
            "closure_starts_at": "10:00",
            "closure_ends_at": "11:00",
            "closure_reason": reason,
        },
    )
    assert refused.status_code == 400
    assert (
        error(refused.text, "closure_reason")
        == "Il testo è troppo lungo: al massimo 200 caratteri."
    )
    assert value(refused.text, "closure_reason") == reason
    assert [value(refused.text, f) for f in ("closure_day", "closure_starts_at")] == [day, "10:00"]
    assert value(refused.text, "closure_ends_at") == "11:00"
    assert await _count(database, Closure.id) == 0

    extra = {
        "csrf_token": token, "extra_day": day, "extra_opens_at": "15:00",
        "extra_closes_at": "17:00", "extra_slot_minutes": "30", "extra_places": HUGE,
        "extra_note": "Apertura straordinaria",
    }  # fmt: skip
    refused = await client.post(f"/schedules/helpdesks/{helpdesk.id}/extra-openings", data=extra)
    assert refused.status_code == 400
    assert error(refused.text, "extra_places") == "Un turno ha tra 1 e 100 posti."
    assert value(refused.text, "extra_places") == HUGE
    assert value(refused.text, "extra_note") == "Apertura straordinaria"
    assert value(refused.text, "extra_opens_at") == "15:00"
    long_note = await client.post(
        f"/schedules/helpdesks/{helpdesk.id}/extra-openings",
        data={**extra, "extra_places": "2", "extra_note": "n" * 201},
    )
    assert long_note.status_code == 400
    assert (
        error(long_note.text, "extra_note") == "Il testo è troppo lungo: al massimo 200 caratteri."
    )
    assert value(long_note.text, "extra_places") == "2"
    assert await _count(database, ExtraOpening.id) == 0


# --- cases -----------------------------------------------------------------------------


async def test_case_reasons_past_their_limits_come_back_with_the_form(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        _c, case = await make_candidate(session, eligible=False)
    await login(client, "coordinatore")
    page = await client.get(f"/cases/{case.id}")
    assert attribute(page.text, "reason", "maxlength") == str(cases.MAX_OVERRIDE_REASON)
    assert attribute(page.text, "close_reason", "maxlength") == str(cases.MAX_CLOSE_REASON)
    token = csrf_from(page.text)
    reason = "Residente da gennaio " + "x" * 4000
    refused = await client.post(
        f"/cases/{case.id}/eligibility",
        data={"csrf_token": token, "decision": "eligible", "reason": reason},
    )
    assert refused.status_code == 400
    assert error(refused.text, "reason") == "Il testo è troppo lungo: al massimo 500 caratteri."
    assert value(refused.text, "reason") == reason
    assert 'value="eligible" checked' in refused.text

    closing = "Ha trovato lavoro " + "x" * 4000
    refused = await client.post(
        f"/cases/{case.id}/close", data={"csrf_token": token, "close_reason": closing}
    )
    assert refused.status_code == 400
    assert (
        error(refused.text, "close_reason") == "Il testo è troppo lungo: al massimo 500 caratteri."
    )
    assert value(refused.text, "close_reason") == closing
    async with database.transaction() as session:
        found = await session.get(Case, case.id)
        assert found is not None and found.state == "new" and found.eligibility_override is None


async def test_an_outcome_past_its_limits_comes_back_with_the_interview(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        _c, case, _b = await checked_in(session, settings, helpdesk)
    await login(client, "operatore")
    page = await client.get(f"/cases/{case.id}/interview")
    assert attribute(page.text, "reason", "maxlength") == str(cases.MAX_REASON)
    assert attribute(page.text, "referred_to", "maxlength") == str(cases.MAX_REFERRED_TO)
    assert attribute(page.text, "work.last_job", "maxlength") == "200"
    assert attribute(page.text, "household.members", "min") == "1"
    refused = await client.post(
        f"/cases/{case.id}/outcome",
        data={
            "csrf_token": csrf_from(page.text),
            "outcome": "referred",
            "reason": "r" * 4001,
            "referred_to": "Centro per l'impiego " + "c" * 400,
            "work.last_job": "Cuoca",
        },
    )
    assert refused.status_code == 400
    assert error(refused.text, "reason") == "Il testo è troppo lungo: al massimo 2000 caratteri."
    assert (
        error(refused.text, "referred_to") == "Il testo è troppo lungo: al massimo 200 caratteri."
    )
    assert value(refused.text, "reason") == "r" * 4001
    assert value(refused.text, "work.last_job") == "Cuoca"
    assert 'value="referred" checked' in refused.text


async def test_a_long_search_comes_back_with_the_list(client: httpx.AsyncClient) -> None:
    await login(client, "operatore")
    page = await client.get("/cases")
    assert attribute(page.text, "q", "maxlength") == "100"
    search = "Maria " + "r" * 100
    refused = await client.get("/cases", params={"q": search, "urgent": "yes"})
    assert refused.status_code == 400
    assert error(refused.text, "q") == "Il testo è troppo lungo: al massimo 100 caratteri."
    assert value(refused.text, "q") == search
    assert '<option value="yes" selected>' in refused.text


# --- intake ----------------------------------------------------------------------------


async def test_the_intake_form_knows_each_answers_limits(client: httpx.AsyncClient) -> None:
    await login(client, "operatore")
    page = (await client.get("/intake")).text
    assert attribute(page, "name", "maxlength") == "80"
    assert attribute(page, "phone", "maxlength") == "40"
    assert attribute(page, "email", "maxlength") == "320"
    assert attribute(page, "fiscal_code", "maxlength") == "40"
    assert attribute(page, "household_members", "min") == "1"
    assert attribute(page, "household_members", "max") == "20"
    assert attribute(page, "household_minors", "min") == "0"
    refused = await client.post(
        "/intake",
        data={
            "csrf_token": csrf_from(page),
            "channel": "phone",
            "name": "Maria " + "r" * 300,
            "phone": "+39 331 693 8049",
            "household_members": HUGE,
        },
    )
    assert refused.status_code == 400
    assert error(refused.text, "name")
    assert error(refused.text, "household_members")
    assert value(refused.text, "phone") == "+39 331 693 8049"
    assert value(refused.text, "household_members") == HUGE


# --- staff accounts and sign-in --------------------------------------------------------


async def test_staff_account_fields_past_their_limits_come_back_with_the_form(
    client: httpx.AsyncClient, database: Database
) -> None:
    await login(client, "admin")
    page = (await client.get("/staff/new")).text
    assert attribute(page, "username", "maxlength") == "40"
    assert attribute(page, "display_name", "maxlength") == "120"
    assert attribute(page, "password", "maxlength") == str(passwords.MAX_LENGTH)
    token = csrf_from(page)
    name = "Giulia " + "f" * 200
    refused = await client.post(
        "/staff",
        data={
            "csrf_token": token,
            "username": "giulia.ferri",
            "display_name": name,
            "role": "operatore",
            "password": "un cavallo corretto e una graffetta",
            "repeat": "un cavallo corretto e una graffetta",
        },
    )
    assert refused.status_code == 400
    assert (
        error(refused.text, "display_name") == "Il testo è troppo lungo: al massimo 120 caratteri."
    )
    assert value(refused.text, "display_name") == name
    assert value(refused.text, "username") == "giulia.ferri"

    secret = "p" * 250
    refused = await client.post(
        "/staff",
        data={
            "csrf_token": token,
            "username": "giulia.ferri",
            "display_name": "Giulia Ferri",
            "role": "coordinatore",
            "password": secret,
            "repeat": secret,
        },
    )
    assert refused.status_code == 400
    assert "128" in error(refused.text, "password")
    assert value(refused.text, "display_name") == "Giulia Ferri"
    assert '<option value="coordinatore" selected>' in refused.text
    async with database.transaction() as session:
        assert (
            await session.scalar(
                select(func.count(StaffUser.id)).where(StaffUser.username == "giulia.ferri")
            )
            == 0
        )


async def test_sign_in_and_password_fields_know_their_limits(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    assert attribute(page.text, "username", "maxlength") == "40"
    assert attribute(page.text, "password", "maxlength") == str(passwords.MAX_LENGTH)
    long_name = "operatore" + "e" * 241
    refused = await client.post(
        "/login",
        data={"csrf_token": csrf_from(page.text), "username": long_name, "password": "x" * 300},
    )
    assert refused.status_code == 401
    assert "Nome utente o password errati." in refused.text
    assert value(refused.text, "username") == long_name

    await login(client, "operatore")
    form = await client.get("/password")
    assert attribute(form.text, "new", "maxlength") == str(passwords.MAX_LENGTH)
    refused = await client.post(
        "/password",
        data={
            "csrf_token": await page_csrf(client),
            "current": "correct horse battery staple",
            "new": "n" * 250,
            "repeat": "n" * 250,
        },
    )
    assert refused.status_code == 400
    assert "128" in error(refused.text, "new")


# --- audit -----------------------------------------------------------------------------


async def test_audit_filters_past_their_limits_come_back_with_the_form(
    client: httpx.AsyncClient,
) -> None:
    await login(client, "coordinatore")
    page = (await client.get("/audit")).text
    assert attribute(page, "actor", "maxlength") == "80"
    # The action and the object type are chosen from lists (issue 12): nothing to bound.
    assert '<select id="f-object_type"' in page and '<select id="f-action"' in page
    assert attribute(page, "object_id", "maxlength") == "64"
    refused = await client.get("/audit", params={"actor": "staff:" + "a" * 80, "action": "case"})
    assert refused.status_code == 400
    assert error(refused.text, "actor") == "Il testo è troppo lungo: al massimo 80 caratteri."
    assert '<option value="case" selected>' in refused.text
