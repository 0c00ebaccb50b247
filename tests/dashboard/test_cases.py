"""Cases over HTTP: list, search and pages, case page, assignment, interview, outcome, decisions."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.booking import service as booking
from shared.booking.service import CancelledBy
from shared.cases import access
from shared.cases import messages as case_messages
from shared.cases import service as cases
from shared.cases.models import Case, Interview
from shared.db import Database
from shared.outbox.models import MessageState, OutboxMessage
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role, StaffUser
from tests.dashboard.conftest import budget_of, login, page_csrf, statements_of
from tests.factories import make_helpdesk
from tests.shared.cases.builders import NOW, WEDNESDAY_9, book, checked_in, make_candidate

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = 'x" onmouseover="alert(1)'


async def _user(session: AsyncSession, username: str) -> StaffUser:
    found = await staff.get_by_username(session=session, username=username)
    assert found is not None
    return found


async def _as(client: httpx.AsyncClient, username: str) -> None:
    await login(client, username)
    client.cookies.set("lang", "en")


async def _assign(database: Database, case_id: int, username: str) -> None:
    async with database.transaction() as session:
        anna = await _user(session, "coordinatore")
        target = await _user(session, username)
        await cases.assign_case(
            session=session, case_id=case_id, assignee_id=target.id, now=NOW,
            staff=access.StaffMember(anna.id, Role.COORDINATORE, "staff:coordinatore"),
        )  # fmt: skip


async def _post(
    client: httpx.AsyncClient, path: str, data: dict[str, str | list[str]] | None = None
) -> httpx.Response:
    token = await page_csrf(client)
    return await client.post(path, data={"csrf_token": token, **(data or {})})


def _rows(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/cases/(\d+)">', html)


# --- the list --------------------------------------------------------------------------------


async def test_an_empty_list_says_so(app: FastAPI, client: httpx.AsyncClient) -> None:
    await _as(client, "operatore")
    page = await client.get("/cases")
    assert page.status_code == 200
    assert "There are no cases yet" in page.text
    assert "<title>Cases · Ripartire</title>" in page.text
    searched = await client.get("/cases", params={"q": "Rossi"})
    assert "No case matches this search" in searched.text


async def test_list_pages_search_and_filters(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        for n in range(30):
            await make_candidate(
                session, name=f"Persona Numero{n}", urgent=n % 10 == 0,
                now=NOW + timedelta(minutes=n),
            )  # fmt: skip
        await make_candidate(session, name="Nicolò D'Amico", phone="+393471112233")
    await _as(client, "coordinatore")
    first = await client.get("/cases")
    assert first.status_code == 200
    assert len(_rows(first.text)) == 25
    assert "Newer cases" not in first.text
    older = re.search(r'href="(/cases\?after=[^"]+)"', first.text)
    assert older is not None
    second = await client.get(older.group(1).replace("&amp;", "&"))
    assert len(_rows(second.text)) == 6
    assert set(_rows(first.text)).isdisjoint(_rows(second.text))
    newer = re.search(r'href="(/cases\?before=[^"]+)"', second.text)
    assert newer is not None
    back = await client.get(newer.group(1).replace("&amp;", "&"))
    assert _rows(back.text) == _rows(first.text)

    found = await client.get("/cases", params={"q": "nicolo"})
    assert "Nicolò D&#39;Amico" in found.text and len(_rows(found.text)) == 1
    by_phone = await client.get("/cases", params={"q": "347 111 2233"})
    assert _rows(by_phone.text) == _rows(found.text)
    urgent = await client.get("/cases", params={"urgent": "yes", "state": "new"})
    assert len(_rows(urgent.text)) == 3
    assert urgent.text.count(">Urgent</span>") == 3
    # Filters are kept in the page links.
    paged = await client.get("/cases", params={"q": "persona"})
    assert re.search(r'href="/cases\?q=persona&amp;after=', paged.text)


async def test_invalid_filters_are_shown_next_to_their_fields_with_the_input_kept(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await _as(client, "operatore")
    page = await client.get("/cases", params={"q": "Rossi", "from": "2026-13-01", "state": "lost"})
    assert page.status_code == 400
    assert 'value="Rossi"' in page.text and 'value="2026-13-01"' in page.text
    assert "Write a date like 2026-03-31." in page.text
    assert "Choose one of the options." in page.text
    forged = await client.get("/cases", params={"after": "garbage"})
    assert forged.status_code == 400


async def test_case_workers_list_only_their_own_and_unassigned_cases(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        _a, free = await make_candidate(session, name="Anna Libera")
        _b, theirs = await make_candidate(session, name="Bruno Assegnato")
    await _assign(database, theirs.id, "coordinatore")
    await _as(client, "operatore")
    listed = await client.get("/cases")
    assert _rows(listed.text) == [str(free.id)]
    assert (await client.get(f"/cases/{theirs.id}")).status_code == 403
    assert (await client.get(f"/cases/{theirs.id}/interview")).status_code == 403
    assert (await client.get("/cases/999999")).status_code == 404
    assert (await client.get("/cases/abc")).status_code == 400
    assert (await client.get(f"/cases/{2**40}")).status_code == 400
    # A search that finds only a colleague's case says why it is empty, without the case.
    searched = await client.get("/cases", params={"q": "Bruno"})
    assert _rows(searched.text) == [] and "Bruno" not in searched.text.replace('value="Bruno"', "")
    assert "Cases followed by other case workers are not listed here" in searched.text
    await _as(client, "coordinatore")
    assert _rows((await client.get("/cases", params={"q": "Bruno"})).text) == [str(theirs.id)]
    empty = await client.get("/cases", params={"q": "Nessuno"})
    assert "Cases followed by other case workers" not in empty.text


# --- the case page ----------------------------------------------------------------------------


async def test_the_case_page_shows_answers_bookings_timeline_and_duplicates(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        citizen, case = await make_candidate(
            session, name="Maria Rossi", phone="+393316938049", telegram_id=555
        )
        await book(session, settings, citizen, helpdesk)
        _t, twin = await make_candidate(session, name="Maria Rossi Bis", phone="+393316938049")
    await _as(client, "operatore")
    page = await client.get(f"/cases/{case.id}")
    assert page.status_code == 200
    html = page.text
    assert "<h1" in html and html.count("<h1") == 1
    for text in (
        "Pre-screening answers", "I lost my job as an employee", "Possible duplicate",
        f'href="/cases/{twin.id}"', "Sportello Comune", "Booking made", "Reminder the day before",
        "Take this case", "Start the interview", "Booked",
    ):  # fmt: skip
        assert text in html, text
    # A case worker does not decide eligibility.
    assert f'action="/cases/{case.id}/eligibility"' not in html
    async with database.transaction(read_only=True) as session:
        reads = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "case.read", AuditEvent.object_id == str(case.id)
                )
            )
        ).all()
    assert [r.actor for r in reads] == ["staff:operatore"]


async def test_assignment(app: FastAPI, client: httpx.AsyncClient, database: Database) -> None:
    async with database.transaction() as session:
        _c, case = await make_candidate(session)
        operatore = await _user(session, "operatore")
    await _as(client, "operatore")
    taken = await _post(client, f"/cases/{case.id}/assign", {"assignee": str(operatore.id)})
    assert taken.status_code == 303
    assert taken.headers["location"] == f"/cases/{case.id}?notice=assigned"
    page = await client.get(taken.headers["location"])
    assert "Assignment saved." in page.text and "Give the case back" in page.text
    coordinator = await _user_id(database, "coordinatore")
    refused = await _post(client, f"/cases/{case.id}/assign", {"assignee": str(coordinator)})
    assert refused.status_code == 403
    given_back = await _post(client, f"/cases/{case.id}/assign", {"assignee": ""})
    assert given_back.status_code == 303

    await _as(client, "coordinatore")
    page = await client.get(f"/cases/{case.id}")
    assert 'name="assignee"' in page.text and "Take this case" not in page.text
    admin = await _user_id(database, "admin")
    wrong = await _post(client, f"/cases/{case.id}/assign", {"assignee": str(admin)})
    assert wrong.status_code == 400
    assert "Choose an active case worker." in wrong.text
    garbage = await _post(client, f"/cases/{case.id}/assign", {"assignee": "nobody"})
    assert garbage.status_code == 400
    done = await _post(client, f"/cases/{case.id}/assign", {"assignee": str(operatore.id)})
    assert done.status_code == 303
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(select(Case.assigned_to_id).where(Case.id == case.id)) == (
            operatore.id
        )


async def _user_id(database: Database, username: str) -> int:
    async with database.transaction(read_only=True) as session:
        return (await _user(session, username)).id


async def test_coordinators_decide_eligibility(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        _c, case = await make_candidate(session, eligible=False)
    await _as(client, "operatore")
    assert (
        await _post(
            client, f"/cases/{case.id}/eligibility", {"decision": "eligible", "reason": "x"}
        )
    ).status_code == 403
    await _as(client, "coordinatore")
    missing = await _post(
        client, f"/cases/{case.id}/eligibility", {"decision": "eligible", "reason": ""}
    )
    assert missing.status_code == 400
    assert "Write the reason for this decision." in missing.text
    assert 'id="f-decision-eligible" name="decision" type="radio" value="eligible" checked' in (
        missing.text
    )
    bad = await _post(client, f"/cases/{case.id}/eligibility", {"decision": "maybe"})
    assert bad.status_code == 400
    done = await _post(
        client, f"/cases/{case.id}/eligibility",
        {"decision": "eligible", "reason": "Residente da gennaio"},
    )  # fmt: skip
    assert done.status_code == 303
    page = await client.get(done.headers["location"])
    assert "Eligibility decision saved." in page.text and "Residente da gennaio" in page.text


async def test_admitting_a_ruled_out_citizen_tells_them_on_telegram(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        citizen, case = await make_candidate(
            session, eligible=False, telegram_id=4242, answers={"residence": "no"}
        )
    await _as(client, "coordinatore")
    refused = await _post(
        client, f"/cases/{case.id}/eligibility", {"decision": "eligible", "reason": ""}
    )
    assert refused.status_code == 400
    async with database.transaction(read_only=True) as session:
        assert (await session.scalars(select(OutboxMessage))).all() == []
    done = await _post(
        client, f"/cases/{case.id}/eligibility",
        {"decision": "eligible", "reason": "Residente da gennaio"},
    )  # fmt: skip
    assert done.status_code == 303
    async with database.transaction(read_only=True) as session:
        (told,) = (await session.scalars(select(OutboxMessage))).all()
    assert (told.kind, told.citizen_id, told.payload) == (
        case_messages.MessageKind.CASE_ELIGIBLE.value, citizen.id, {"case_id": case.id},
    )  # fmt: skip
    assert told.state == MessageState.PENDING.value


async def test_closing_a_case(app: FastAPI, client: httpx.AsyncClient, database: Database) -> None:
    async with database.transaction() as session:
        _c, case = await make_candidate(session)
    await _as(client, "operatore")
    empty = await _post(client, f"/cases/{case.id}/close", {"close_reason": " "})
    assert empty.status_code == 400
    assert "Write why the case is closed." in empty.text
    closed = await _post(client, f"/cases/{case.id}/close", {"close_reason": "Ha trovato lavoro"})
    assert closed.status_code == 303
    page = await client.get(closed.headers["location"])
    assert "Case closed." in page.text and "Ha trovato lavoro" in page.text
    again = await _post(client, f"/cases/{case.id}/close", {"close_reason": "again"})
    assert again.status_code == 400


# --- interview and outcome ------------------------------------------------------------------


async def test_interview_form_is_prefilled_saves_drafts_and_keeps_bad_input(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        _c, case = await make_candidate(session, urgent=True)
    await _as(client, "operatore")
    form = await client.get(f"/cases/{case.id}/interview")
    assert form.status_code == 200
    html = form.text
    assert "The form starts from the pre-screening answers" in html
    assert re.search(r'<option value="job_loss" selected>', html)
    assert 'name="household.members" type="number" value="3"' in html
    assert 'name="notes.needs" type="checkbox" value="job_search" checked' in html
    assert "can be recorded once the candidate is checked in" in html

    bad = await _post(
        client, f"/cases/{case.id}/interview",
        {"work.last_job": "Magazziniere", "household.members": "tre", "notes.needs": ["microcredit"]},
    )  # fmt: skip
    assert bad.status_code == 400
    assert "Write a whole number, without dots or commas." in bad.text
    assert 'value="tre"' in bad.text and 'value="Magazziniere"' in bad.text
    assert (
        'value="microcredit" checked' in bad.text and 'value="job_search" checked' not in bad.text
    )

    saved = await _post(
        client, f"/cases/{case.id}/interview",
        {"work.last_job": "Magazziniere", "household.members": "4", "debts.struggling": "yes"},
    )  # fmt: skip
    assert saved.status_code == 303
    again = await client.get(saved.headers["location"])
    assert "Interview saved as a draft." in again.text
    assert 'value="Magazziniere"' in again.text
    async with database.transaction(read_only=True) as session:
        interview = await session.scalar(select(Interview).where(Interview.case_id == case.id))
        assert interview is not None
        assert interview.answers["household"]["members"] == 4
        # Working on an unassigned case makes it one's own.
        assert (
            await session.scalar(select(Case.assigned_to_id).where(Case.id == case.id))
            == (await _user(session, "operatore")).id
        )


async def test_recording_the_outcome(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        _c, booked_case = await make_candidate(session, name="Bruno Prenotato")
        await book(session, settings, _c, helpdesk)
        _d, case, _b = await checked_in(
            session,
            settings,
            helpdesk,
            name="Carla Arrivata",
            starts_at=NOW + timedelta(days=2, hours=1),
        )
    await _as(client, "operatore")
    early = await _post(
        client, f"/cases/{booked_case.id}/outcome", {"outcome": "admitted", "work.last_job": "x"}
    )
    assert early.status_code == 400
    assert "once the candidate is checked in" in early.text

    form = await client.get(f"/cases/{case.id}/interview")
    assert f'formaction="/cases/{case.id}/outcome"' in form.text
    missing = await _post(
        client, f"/cases/{case.id}/outcome",
        {"outcome": "not_admitted", "reason": "", "work.last_job": "Cuoca"},
    )  # fmt: skip
    assert missing.status_code == 400
    assert "Write why the candidate is not admitted." in missing.text
    assert 'value="not_admitted" checked' in missing.text and 'value="Cuoca"' in missing.text
    referred = await _post(
        client, f"/cases/{case.id}/outcome",
        {"outcome": "referred", "referred_to": "", "work.last_job": "Cuoca"},
    )  # fmt: skip
    assert "Write which service the candidate is referred to." in referred.text

    done = await _post(
        client, f"/cases/{case.id}/outcome",
        {"outcome": "admitted", "work.last_job": "Cuoca", "household.members": "2"},
    )  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"] == f"/cases/{case.id}?notice=outcome"
    page = await client.get(done.headers["location"])
    assert "Outcome recorded." in page.text and "Admitted" in page.text and "Cuoca" in page.text
    final = await client.get(f"/cases/{case.id}/interview")
    assert "Save draft" not in final.text and "Cuoca" in final.text
    late = await _post(client, f"/cases/{case.id}/interview", {"work.last_job": "Altro"})
    assert late.status_code == 400
    assert "can no longer be changed" in late.text


async def test_italian_is_the_default(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        _c, case = await make_candidate(session)
    await login(client, "operatore")
    listed = await client.get("/cases")
    assert "<title>Casi · Ripartire</title>" in listed.text
    page = await client.get(f"/cases/{case.id}/interview")
    assert "Storia lavorativa" in page.text


# --- safety and cost ------------------------------------------------------------------------


async def test_hostile_names_and_answers_render_inert(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        _c, case = await make_candidate(
            session, name=SCRIPT, answers={"name": f"{SCRIPT} {ATTRIBUTE}"}
        )
    await _as(client, "operatore")
    saved = await _post(client, f"/cases/{case.id}/interview", {"work.last_job": ATTRIBUTE})
    assert saved.status_code == 303
    for path in ("/cases", f"/cases/{case.id}", f"/cases/{case.id}/interview"):
        html = (await client.get(path)).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert SCRIPT not in html, path
        if path != "/cases":
            assert "&#34; onmouseover=&#34;alert(1)" in html, path
            assert '" onmouseover="' not in html, path


async def test_list_and_case_pages_take_at_most_five_statements(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        for n in range(40):
            await make_candidate(session, name=f"Persona {n}", phone=f"+3933100000{n:02d}")
        citizen, case = await make_candidate(
            session, name="Maria Rossi", phone="+393316938049", telegram_id=999
        )
        await book(session, settings, citizen, helpdesk)
        await make_candidate(session, name="Maria Doppia", phone="+393316938049")
    await _as(client, "coordinatore")
    for path in (
        "/cases",
        "/cases?q=persona&urgent=no",
        f"/cases/{case.id}",
        f"/cases/{case.id}/interview",
    ):
        response, statements = await statements_of(database, lambda path=path: client.get(path))
        assert response.status_code == 200, path
        assert len(statements) <= budget_of(statements, 5), (path, statements)


# --- how the case page reads (issue 12, point 5) ----------------------------------------------


def _shown(page: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page)))


async def test_the_timeline_reads_as_phrases_and_states_have_one_word(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
        citizen, case, _made = await checked_in(session, settings, helpdesk, name="Maria Rossi")
        later = await book(session, settings, citizen, helpdesk, WEDNESDAY_9)
        await booking.move_booking(
            session=session, settings=settings, booking_id=later.id, helpdesk_id=helpdesk.id,
            starts_at=WEDNESDAY_9 + timedelta(hours=1), by=CancelledBy.STAFF,
            actor="staff:coordinatore", now=NOW,
        )  # fmt: skip
    await login(client, "coordinatore")
    shown = _shown((await client.get(f"/cases/{case.id}")).text)
    # The bookings table and the agenda say the same word for the same state.
    agenda = _shown((await client.get("/agenda", params={"day": "2026-12-08"})).text)
    assert "Presente" in shown and "Presente" in agenda
    assert "Presentato" not in shown
    for phrase in (
        "Caso aperto", "Presenza registrata all'appuntamento di 8 dic 2026, 09:00",
        "Appuntamento spostato da 9 dic 2026, 09:00 a 9 dic 2026, 10:00",
        "Il caso ora è: Presente",
    ):  # fmt: skip
        assert phrase in shown, phrase
    for code in ("case.booking", "booking.create", "booking.attended", "case.open", "booking_id"):
        assert code not in shown, code


async def test_the_empty_search_message_has_its_spaces(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await login(client, "operatore")
    shown = _shown((await client.get("/cases", params={"q": "Nessuno"})).text)
    assert "togli i filtri. I casi seguiti da altri operatori" in shown
