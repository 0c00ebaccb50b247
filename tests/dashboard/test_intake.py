"""Phone and walk-in intake: the questionnaire filled by staff, eligibility, then a booking."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import httpx
from markupsafe import escape
from sqlalchemy import func, select

from shared import program
from shared.audit.models import AuditEvent
from shared.booking import service as booking
from shared.booking import waitlist
from shared.booking.models import Booking
from shared.cases import access
from shared.cases import service as cases
from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.db import Database, utcnow
from shared.i18n import Translator
from shared.intake.models import Intake, IntakeState
from shared.intake.questionnaire import QUESTIONNAIRE
from shared.settings import Settings
from shared.staff.models import Role, StaffUser
from tests.dashboard.conftest import login, page_csrf
from tests.factories import make_citizen, make_helpdesk

VALID: dict[str, str | list[str]] = {
    "channel": "walk_in",
    "consent": "yes",
    "residence": "yes",
    "situation": "job_loss",
    "since": "03/2021",
    "pandemic_related": "yes",
    "household_members": "3",
    "household_minors": "1",
    "benefits": ["naspi", "other"],
    "needs": ["job_search", "microcredit"],
    "urgent": "no",
    "name": "Maria Rossi",
    "phone": "331 693 8049",
    "email": "maria.rossi@example.com",
    "fiscal_code": "RSSMRA85D03F205P",
}
SLOT_VALUE = re.compile(r'name="slot" type="radio" value="([^"]+)"')


async def signed_in(client: httpx.AsyncClient, username: str = "operatore") -> str:
    await login(client, username)
    return await page_csrf(client, "/intake")


async def post_intake(
    client: httpx.AsyncClient, token: str, **changes: str | list[str] | None
) -> httpx.Response:
    data = {**VALID, **changes, "csrf_token": token}
    return await client.post("/intake", data={k: v for k, v in data.items() if v is not None})


async def count(database: Database, model: type[object]) -> int:
    async with database.transaction(read_only=True) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_the_form_is_generated_from_the_questionnaire(client: httpx.AsyncClient) -> None:
    await login(client, "coordinatore")
    page = await client.get("/intake")
    assert page.status_code == 200
    html = page.text
    assert "<title>" in html and "<h1" in html
    assert 'name="csrf_token"' in html
    for step in QUESTIONNAIRE:
        if step.key == "household":
            assert 'name="household_members"' in html and 'name="household_minors"' in html
        else:
            assert f'name="{step.key}"' in html, step.key
    assert 'name="residence" type="radio" value="yes"' in html
    assert 'name="benefits" type="checkbox" value="naspi"' in html
    assert 'name="phone" type="tel"' in html
    assert 'name="channel" type="radio" value="phone"' in html
    assert 'name="consent" type="checkbox"' in html
    # The conditional steps say when they apply.
    assert html.count("Solo se") == 2


async def test_walk_in_intake_then_booking(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, weekdays=(0, 1, 2, 3, 4, 5, 6), places=2)
    token = await signed_in(client)
    response = await post_intake(client, token)
    assert response.status_code == 303
    location = response.headers["location"]
    citizen_id = int(location.rsplit("/", 1)[1])

    async with database.transaction(read_only=True) as session:
        citizen = await session.get(Citizen, citizen_id)
        assert citizen is not None
        assert (citizen.channel, citizen.name, citizen.phone) == (
            "walk_in", "Maria Rossi", "+393316938049",
        )  # fmt: skip
        assert (citizen.email, citizen.fiscal_code, citizen.urgent) == (
            "maria.rossi@example.com", "RSSMRA85D03F205P", False,
        )  # fmt: skip
        intake = await session.scalar(select(Intake).where(Intake.citizen_id == citizen_id))
        assert intake is not None
        assert (intake.state, intake.eligible) == (IntakeState.COMPLETED, True)
        assert intake.answers["household"] == {"members": 3, "minors": 1}
        assert intake.answers["needs"] == ["microcredit", "job_search"]
        actions = (
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.actor == "staff:operatore")
            )
        ).all()
        assert {"citizen.create", "intake.complete"} <= set(actions)

    result = await client.get(location)
    assert result.status_code == 200
    assert "Idoneo" in result.text
    async with database.transaction(read_only=True) as session:
        case = await session.scalar(select(Case).where(Case.citizen_id == citizen_id))
        assert case is not None
    assert f'href="/cases/{case.id}"' in result.text
    assert "Maria Rossi" in result.text
    slots = SLOT_VALUE.findall(result.text)
    assert slots, "no free slot offered"
    csrf = await page_csrf(client, location)
    booked = await client.post(f"{location}/booking", data={"slot": slots[0], "csrf_token": csrf})
    assert booked.status_code == 303
    assert booked.headers["location"] == location

    async with database.transaction(read_only=True) as session:
        rows = (await session.scalars(select(Booking))).all()
        assert len(rows) == 1
        assert (rows[0].citizen_id, rows[0].helpdesk_id, rows[0].state) == (
            citizen_id, helpdesk.id, "booked",
        )  # fmt: skip
        assert rows[0].created_by == "staff:operatore"
        code = rows[0].code
        assert await session.scalar(select(AuditEvent).where(AuditEvent.action == "booking.create"))
    page = await client.get(location)
    assert code in page.text
    assert "Colloquio prenotato" in page.text
    assert not SLOT_VALUE.search(page.text)

    # One active booking per citizen: the booking service's rule holds here too.
    again = await client.post(f"{location}/booking", data={"slot": slots[1], "csrf_token": csrf})
    assert again.status_code == 400
    assert "ha già una prenotazione attiva" in again.text
    assert await count(database, Booking) == 1


async def test_booking_rules_are_not_bypassed(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, weekdays=(0, 1, 2, 3, 4, 5, 6), places=1)
        rival = await make_citizen(session, name="Luca Bianchi")
    token = await signed_in(client)
    location = (await post_intake(client, token)).headers["location"]
    csrf = await page_csrf(client, location)

    past = (utcnow() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    response = await client.post(
        f"{location}/booking",
        data={"slot": f"{helpdesk.id}|{past.isoformat()}", "csrf_token": csrf},
    )
    assert response.status_code == 400
    assert "è già passato" in response.text
    for forged in ("", "nonsense", f"{helpdesk.id}|2026-01-01T09:00:00"):
        response = await client.post(
            f"{location}/booking", data={"slot": forged, "csrf_token": csrf}
        )
        assert response.status_code == 400
        assert "Scegli un orario" in response.text

    first = SLOT_VALUE.findall((await client.get(location)).text)[0]
    helpdesk_id, starts = first.split("|")
    async with database.transaction() as session:
        await booking.book_slot(
            session=session, settings=settings, citizen_id=rival.id,
            helpdesk_id=int(helpdesk_id), starts_at=datetime.fromisoformat(starts), actor="test",
        )  # fmt: skip
    taken = await client.post(f"{location}/booking", data={"slot": first, "csrf_token": csrf})
    assert taken.status_code == 409
    assert "è appena stato preso" in taken.text
    fresh = SLOT_VALUE.findall(taken.text)
    assert fresh and first not in fresh
    assert await count(database, Booking) == 1


async def test_invalid_answers_are_shown_next_to_the_fields_and_kept(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await signed_in(client)
    response = await post_intake(
        client,
        token,
        residence=None,
        since="13/2021",
        phone="12",
        benefits=["none", "naspi"],
        name="Maria <b>",
        consent=None,
    )
    assert response.status_code == 400
    html = response.text
    assert 'id="e-residence"' in html and "Scegli una risposta" in html
    assert 'id="e-since"' in html
    assert 'id="e-phone"' in html
    assert 'id="e-benefits"' in html
    assert 'id="e-name"' in html
    assert 'id="e-consent"' in html
    assert 'id="e-household_members"' not in html
    # What staff typed is still there.
    assert 'value="13/2021"' in html
    assert 'value="12"' in html
    assert 'value="Maria &lt;b&gt;"' in html
    assert 'value="walk_in" checked' in html
    assert 'value="naspi" checked' in html and 'value="none" checked' in html
    assert 'value="job_loss" checked' in html
    assert 'name="household_members" type="number" value="3"' in html
    for model in (Citizen, Intake, Booking):
        assert await count(database, model) == 0


async def test_ineligible_result_is_explained_and_offers_no_booking(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        await make_helpdesk(session, weekdays=(0, 1, 2, 3, 4, 5, 6))
    token = await signed_in(client)
    response = await post_intake(
        client, token, channel="phone", residence="no", situation="other",
        since="not a date", pandemic_related=None,
    )  # fmt: skip
    assert response.status_code == 303
    page = await client.get(response.headers["location"])
    assert page.status_code == 200
    assert "Non idoneo" in page.text
    assert "Cernusco sul Naviglio" in page.text
    assert not SLOT_VALUE.search(page.text)
    async with database.transaction(read_only=True) as session:
        intake = await session.scalar(select(Intake))
        assert intake is not None
        assert intake.eligible is False
        assert "since" not in intake.answers
        citizen = await session.get(Citizen, intake.citizen_id)
        assert citizen is not None and citizen.channel == "phone"
    csrf = await page_csrf(client, response.headers["location"])
    refused = await client.post(
        f"{response.headers['location']}/booking",
        data={"slot": f"1|{(utcnow() + timedelta(days=3)).isoformat()}", "csrf_token": csrf},
    )
    assert refused.status_code == 400
    assert await count(database, Booking) == 0


async def test_duplicate_warning_then_continue(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        known = await make_citizen(session, name="Maria Rossini")
        known.phone = "+393316938049"
        known_id = known.id
    token = await signed_in(client)
    warned = await post_intake(client, token)
    assert warned.status_code == 409
    assert "Possibile doppione" in warned.text
    assert "Maria Rossini" in warned.text
    assert f'name="acknowledged" type="checkbox" value="{known_id}"' in warned.text
    assert 'value="Maria Rossi"' in warned.text
    assert await count(database, Citizen) == 1

    accepted = await post_intake(client, token, acknowledged=str(known_id))
    assert accepted.status_code == 303
    assert await count(database, Citizen) == 2
    page = await client.get(accepted.headers["location"])
    assert "Possibile doppione" in page.text
    assert "Maria Rossini" in page.text


async def test_unknown_or_telegram_citizens_have_no_intake_page(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        telegram = await make_citizen(session)
    await signed_in(client)
    assert (await client.get("/intake/999999")).status_code == 404
    assert (await client.get(f"/intake/{telegram.id}")).status_code == 404
    assert (await client.get("/intake/abc")).status_code == 400


async def test_reading_the_result_is_audited(client: httpx.AsyncClient, database: Database) -> None:
    token = await signed_in(client, "coordinatore")
    location = (await post_intake(client, token)).headers["location"]
    await client.get(location)
    async with database.transaction(read_only=True) as session:
        read = await session.scalar(select(AuditEvent).where(AuditEvent.action == "citizen.read"))
        assert read is not None
        assert (read.actor, read.object_id) == ("staff:coordinatore", location.rsplit("/", 1)[1])


async def test_hostile_text_renders_inert_on_the_result(
    client: httpx.AsyncClient, database: Database
) -> None:
    hostile = "<script>alert(1)</script>"
    attribute = '"onmouseover=alert(1)'
    async with database.transaction() as session:
        citizen = Citizen(channel="phone", name=hostile, phone="+393316938049", email=attribute)
        session.add(citizen)
        await session.flush()
        session.add(
            Intake(
                citizen_id=citizen.id, state="completed", eligible=False, urgent=False,
                answers={"residence": "no", "name": hostile, "email": attribute,
                         "situation": attribute},
                history=["residence", "name", "email"], completed_at=utcnow(),
            )
        )  # fmt: skip
        twin = Citizen(channel="walk_in", name=hostile + attribute, phone="+393316938049")
        session.add(twin)
        citizen_id = citizen.id
    await signed_in(client)
    page = await client.get(f"/intake/{citizen_id}")
    assert page.status_code == 200
    assert hostile not in page.text
    assert attribute not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "onmouseover=alert(1)" in page.text  # shown, as text


async def test_a_case_assigned_to_someone_else_is_not_shown(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await signed_in(client, "coordinatore")
    location = (await post_intake(client, token)).headers["location"]
    citizen_id = int(location.rsplit("/", 1)[1])
    async with database.transaction() as session:
        case = await session.scalar(select(Case).where(Case.citizen_id == citizen_id))
        assert case is not None
        case.assigned_to_id = await session.scalar(
            select(StaffUser.id).where(StaffUser.username == "coordinatore")
        )
    assert (await client.get(location)).status_code == 200
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as worker:
        csrf = await signed_in(worker, "operatore")
        assert (await worker.get(location)).status_code == 403
        refused = await worker.post(
            f"{location}/booking",
            data={"slot": f"1|{(utcnow() + timedelta(days=3)).isoformat()}", "csrf_token": csrf},
        )
        assert refused.status_code == 403
    assert await count(database, Booking) == 0


# --- the citizen's standing, as the result page shows it ------------------------------------


async def _decide(database: Database, settings: Settings, citizen_id: int, eligible: bool) -> None:
    """A coordinator's decision on the citizen's case, over the questionnaire's outcome."""
    async with database.transaction() as session:
        case = await session.scalar(select(Case).where(Case.citizen_id == citizen_id))
        coordinator = await session.scalar(
            select(StaffUser).where(StaffUser.username == "coordinatore")
        )
        assert case is not None and coordinator is not None
        await cases.override_eligibility(
            session=session, settings=settings, case_id=case.id, eligible=eligible,
            reason="Visto il caso", staff=access.StaffMember(
                coordinator.id, Role.COORDINATORE, "staff:coordinatore"
            ), now=utcnow(),
        )  # fmt: skip


async def test_the_booked_result_says_what_to_bring_from_the_program(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        await make_helpdesk(session, weekdays=(0, 1, 2, 3, 4, 5, 6))
    token = await signed_in(client)
    location = (await post_intake(client, token)).headers["location"]
    slot = SLOT_VALUE.findall((await client.get(location)).text)[0]
    csrf = await page_csrf(client, location)
    await client.post(f"{location}/booking", data={"slot": slot, "csrf_token": csrf})
    page = (await client.get(location)).text
    assert "Il colloquio è prenotato" in page
    t = Translator("it")
    for item in program.WHAT_TO_BRING:
        assert f"<li>{escape(t(item))}</li>" in page
        assert t(item) != item  # translated, not the msgid


async def test_a_coordinator_admits_a_ruled_out_citizen_who_is_then_booked_from_here(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        await make_helpdesk(session, weekdays=(0, 1, 2, 3, 4, 5, 6))
    token = await signed_in(client)
    location = (await post_intake(client, token, residence="no")).headers["location"]
    citizen_id = int(location.rsplit("/", 1)[1])
    assert not SLOT_VALUE.search((await client.get(location)).text)
    await _decide(database, settings, citizen_id, True)
    page = (await client.get(location)).text
    assert "Un coordinatore ha deciso sul caso: idoneo." in page
    # The questionnaire's own outcome stays visible.
    assert "In base al solo questionario la persona non risultava idonea" in page
    slot = SLOT_VALUE.findall(page)[0]
    csrf = await page_csrf(client, location)
    booked = await client.post(f"{location}/booking", data={"slot": slot, "csrf_token": csrf})
    assert booked.status_code == 303
    assert await count(database, Booking) == 1


async def test_a_coordinator_rules_out_an_eligible_citizen_who_is_refused_here(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        await make_helpdesk(session, weekdays=(0, 1, 2, 3, 4, 5, 6))
    token = await signed_in(client)
    location = (await post_intake(client, token)).headers["location"]
    citizen_id = int(location.rsplit("/", 1)[1])
    slot = SLOT_VALUE.findall((await client.get(location)).text)[0]
    await _decide(database, settings, citizen_id, False)
    page = (await client.get(location)).text
    assert "Non idoneo" in page and "Un coordinatore ha deciso sul caso: non idoneo." in page
    assert not SLOT_VALUE.search(page)
    csrf = await page_csrf(client, location)
    refused = await client.post(f"{location}/booking", data={"slot": slot, "csrf_token": csrf})
    assert refused.status_code == 400
    assert "Da qui si prenota il colloquio solo per chi risulta idoneo." in refused.text
    assert await count(database, Booking) == 0


async def test_a_citizen_on_the_waitlist_is_shown_so(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    token = await signed_in(client)
    location = (await post_intake(client, token)).headers["location"]
    citizen_id = int(location.rsplit("/", 1)[1])
    async with database.transaction() as session:
        # No helpdesk, nothing free: the waitlist is open to them.
        await waitlist.join_waitlist(
            session=session, settings=settings, citizen_id=citizen_id, now=utcnow()
        )
    page = (await client.get(location)).text
    assert "In lista d&#39;attesa: riceverà un messaggio su Telegram" in page


# --- the form reads as a form for staff (issue 12, point 5) -----------------------------------


def _shown(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


async def test_the_household_is_two_labelled_boxes_with_messages_for_staff(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await signed_in(client)
    form = await client.get("/intake")
    shown = _shown(form.text)
    assert '<label for="f-household_members"' in form.text
    assert "Persone nel nucleo familiare" in shown and "di cui minorenni" in shown
    assert "3 1" not in shown and "due numeri" not in shown
    for members, minors, box in (
        ("3", "3", "minors"),
        ("0", "", "members"),
        ("tre", "", "members"),
    ):
        response = await post_intake(
            client, token, household_members=members, household_minors=minors
        )
        assert response.status_code == 400
        assert f'id="e-household_{box}"' in response.text, (members, minors)
        error = re.search(rf'id="e-household_{box}"[^>]*>([^<]*)<', response.text)
        assert error is not None
        assert "3 1" not in error.group(1) and "due numeri" not in error.group(1)
        assert f'name="household_members" type="number" value="{members}"' in response.text
    # Stored as the questionnaire stores it.
    made = await post_intake(client, token)
    assert made.status_code == 303
    async with database.transaction(read_only=True) as session:
        intake = await session.scalar(select(Intake))
        assert intake is not None and intake.answers["household"] == {"members": 3, "minors": 1}


async def test_the_result_stops_saying_book_below_once_booked(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        await make_helpdesk(session, weekdays=(0, 1, 2, 3, 4, 5, 6))
    token = await signed_in(client)
    made = await post_intake(client, token)
    result = made.headers["location"]
    page = await client.get(result)
    assert "Prenota qui sotto" in _shown(page.text)
    slot = SLOT_VALUE.search(page.text)
    assert slot is not None
    booked = await client.post(
        f"{result}/booking", data={"csrf_token": token, "slot": html.unescape(slot.group(1))}
    )
    assert booked.status_code == 303
    shown = _shown((await client.get(result)).text)
    assert "Colloquio prenotato" in shown
    assert "Prenota qui sotto" not in shown
    # Nor once the citizen came: the interview is no longer to be booked.
    async with database.transaction() as session:
        made_booking = await session.scalar(select(Booking))
        assert made_booking is not None
        await booking.mark_attended(
            session=session, booking_id=made_booking.id, actor="test", now=made_booking.starts_at
        )
    shown = _shown((await client.get(result)).text)
    assert "Prenota qui sotto" not in shown
    assert "si è presentata al colloquio" in shown
